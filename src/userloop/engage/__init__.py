"""Act: journeys over real channels, their delivery rules, templates and benefits (DOMAIN §6, §7)."""
