"""Channel adapters behind one interface (:mod:`userloop.engage.channels.base`)."""
