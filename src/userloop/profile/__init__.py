"""The user profile platform: tags with history, segments with a behavioural rule language, comparisons,
look-alikes, the user 360 view and exports (DOMAIN §2–§4). Built on :mod:`userloop.query` and
:mod:`userloop.models`; the faces (API, CLI) sit above it."""
