// Which fields hold personal data, by name, as the API decides it (userloop.query.masking.is_sensitive): the name
// is split into tokens at non-alphanumerics and lower→upper camel-case steps; a whole token from the phone or
// e-mail lists marks the field. The console uses it to say "masked" next to a value the API masked.

const PHONE = new Set(["phone", "mobile", "tel", "telephone", "cellphone", "msisdn", "phonenumber", "phoneno",
  "mobileno", "telno"]);
const EMAIL = new Set(["email", "emailaddress", "mail"]);

export function tokens(name: string): string[] {
  const camel = name.replace(/([a-z0-9])(?=[A-Z])|([A-Z])(?=[A-Z][a-z])/g, "$1$2_");
  return camel.split(/[^0-9A-Za-z]+/).filter(Boolean).map((t) => t.toLowerCase());
}

export function sensitiveKind(name: string): "phone" | "email" | null {
  const words = tokens(name);
  if (words.some((w) => PHONE.has(w))) return "phone";
  if (words.some((w) => EMAIL.has(w))) return "email";
  return null;
}
