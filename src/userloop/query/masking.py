"""Masking of personal data: phone numbers and email addresses, in Python and as SQL.

Which fields are sensitive is decided by name (:func:`is_sensitive`): the name is split into tokens at every
character that is not a letter or a digit (``_``, ``$``, ``-``, ``.``, spaces) and at lower→upper camel-case
steps, lower-cased, and a token from :data:`PHONE_TOKENS` or :data:`EMAIL_TOKENS` marks the field. So ``phone``,
``$phone``, ``mobile``, ``tel``, ``$identity_mobile``, ``contactPhone`` are phones and ``email``, ``$email``,
``$identity_email``, ``contact_email`` are emails, while ``hotel``, ``telegram_id``, ``emailed`` or ``mobility``
are not (a token must match whole). The rule errs towards masking: ``phone_verified`` is masked too.

Masks (the same in Python and in SQL, so a 360 view and an export agree):

- phone: the first 3 and the last 4 characters stay, the rest become ``*`` (``13812345678`` → ``138****5678``);
  values shorter than :data:`PHONE_FULL` characters keep only their last 2 (``5551234`` → ``*****34``), and
  1–2 character values are all ``*``;
- email: the first character of the local part and the domain stay (``zhang@example.com`` → ``z***@example.com``,
  always three ``*`` so the length does not leak); without an ``@`` only the first character stays.

A value that is not a string is masked as its text (numbers without a trailing ``.0`` when integral, booleans as
``true``/``false``, lists element by element), so a masked field never lets the clear value through. Exports
mask inside DuckDB's ``COPY`` with :func:`mask_sql`, never in Python after the fact.

>>> mask_phone("13812345678"), mask_email("zhang@example.com"), is_sensitive("$identity_mobile")
('138****5678', 'z***@example.com', 'phone')
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal

from sqlglot import exp

from userloop.schema.types import PropertyType
from userloop.store.sqlbuild import sql

Kind = Literal["phone", "email"]

PHONE_TOKENS = frozenset(
    {"phone", "mobile", "tel", "telephone", "cellphone", "msisdn", "phonenumber", "phoneno", "mobileno", "telno"}
)
EMAIL_TOKENS = frozenset({"email", "emailaddress", "mail"})
#: Phones of at least this many characters keep their first 3 and last 4; shorter ones only their last 2.
PHONE_FULL = 10

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^0-9A-Za-z]+")


def tokens(name: str) -> list[str]:
    """The lower-case word tokens of a field name (``$identity_mobile`` → ``['identity', 'mobile']``)."""
    return [t.lower() for t in _SPLIT.split(_CAMEL.sub("_", name)) if t]


def is_sensitive(name: str) -> Kind | None:
    """``"phone"`` or ``"email"`` when a field (property, identity type, tag) with this name holds one."""
    words = set(tokens(name))
    if words & PHONE_TOKENS:
        return "phone"
    if words & EMAIL_TOKENS:
        return "email"
    return None


# Python -----------------------------------------------------------------------------------------------------
def as_text(value: object) -> str:
    """The text a value is masked as, the same text :func:`text_sql` gives in DuckDB."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def mask_phone(text: str) -> str:
    n = len(text)
    if n >= PHONE_FULL:
        return text[:3] + "*" * (n - 7) + text[-4:]
    if n > 2:
        return "*" * (n - 2) + text[-2:]
    return "*" * n


def mask_email(text: str) -> str:
    local, at, domain = text.rpartition("@")
    if not at:
        return text[:1] + "***" if text else ""
    return local[:1] + "***@" + domain


def mask(kind: Kind, value: object) -> object:
    """``value`` masked as ``kind``; None stays None and lists are masked element by element."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [mask(kind, v) for v in value]
    text = as_text(value)
    return mask_phone(text) if kind == "phone" else mask_email(text)


def mask_field(name: str, value: object, *, unmask: bool = False) -> object:
    """``value`` of the field ``name``, masked when the name is sensitive and ``unmask`` is false."""
    kind = None if unmask else is_sensitive(name)
    return value if kind is None else mask(kind, value)


# SQL ----------------------------------------------------------------------------------------------------------
def text_sql(value: exp.Expr, ptype: PropertyType | None = None) -> exp.Expr:
    """``value`` as VARCHAR the way :func:`as_text` writes it (``ptype`` NUMBER drops an integral ``.0``)."""
    if ptype == PropertyType.NUMBER:
        return sql(
            "CASE WHEN $v = trunc($v) AND abs($v) < 1e15 THEN CAST(CAST($v AS BIGINT) AS VARCHAR) "
            "ELSE CAST($v AS VARCHAR) END",
            v=value,
        )
    return exp.cast(value, exp.DataType.Type.VARCHAR)


def _phone_sql(s: exp.Expr) -> exp.Expr:
    return sql(
        "CASE WHEN length($s) >= $full THEN left($s, 3) || repeat('*', length($s) - 7) || right($s, 4) "
        "WHEN length($s) > 2 THEN repeat('*', length($s) - 2) || right($s, 2) "
        "ELSE repeat('*', length($s)) END",
        s=s,
        full=PHONE_FULL,
    )


def _email_sql(s: exp.Expr) -> exp.Expr:
    # the last '@' splits local part and domain, as str.rpartition does
    return sql(
        "CASE WHEN strpos($s, '@') = 0 THEN CASE WHEN $s = '' THEN '' ELSE left($s, 1) || '***' END "
        "ELSE left($s, least(1, length($s) - length(split_part($s, '@', -1)) - 1)) || '***@' "
        "|| split_part($s, '@', -1) END",
        s=s,
    )


def mask_sql(kind: Kind, value: exp.Expr, ptype: PropertyType | None = None) -> exp.Expr:
    """A DuckDB expression giving ``value`` masked as ``kind`` (NULL stays NULL; a LIST column element-wise).

    ``value`` is any expression; ``ptype`` is its property type when known (NUMBER and LIST change the text).
    """
    build = _phone_sql if kind == "phone" else _email_sql
    if ptype == PropertyType.LIST:
        element = exp.to_identifier("_ul_item")
        body = build(exp.cast(exp.column(element), exp.DataType.Type.VARCHAR))
        return exp.func("list_transform", value, exp.Lambda(this=body, expressions=[element]))
    return build(text_sql(value, ptype))
