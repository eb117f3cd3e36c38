"""Local stand-ins for the SMS and push providers' clouds, for tests and demos.

The provider clouds cannot be reached from a test machine, so each module here serves one provider's real HTTP API
on ``127.0.0.1`` (an ephemeral port, in a thread): it checks the real authentication (signature, Basic, bearer
token) the way the provider does, validates the request shape, answers with the provider's reply and error bodies,
records what it accepted, can be told to refuse given numbers or tokens with a given provider error, and sends
delivery receipts in the provider's format. The adapters in :mod:`userloop.engage.channels` are tested against them.

The fakes implement each provider's contract from its public documentation independently of the adapters (their
own signature code), so a test that passes shows the adapter and the documented contract agree, not that one piece
of code agrees with itself.
"""
