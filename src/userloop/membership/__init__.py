"""The member system (DOMAIN §9): a programme's growth value and levels, the points ledger, benefits, check-ins and
tasks, with their state in the metadata database (SQLite embedded, PostgreSQL at scale)."""
