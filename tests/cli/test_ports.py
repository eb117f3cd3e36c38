"""Claiming the service's address: a taken port and an address the machine cannot listen on are told apart."""

from __future__ import annotations

import socket

import pytest

from userloop.cli.ports import claim
from userloop.core.errors import UserloopError


def test_a_taken_port_is_port_in_use_and_names_a_free_one() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UserloopError) as caught:
            claim("127.0.0.1", port)
    assert caught.value.code == "port_in_use" and caught.value.field == "--port"
    assert f"port {port} on 127.0.0.1 is in use; pass --port " in str(caught.value)


@pytest.mark.parametrize("host", ["no-such-host.invalid", "192.0.2.1"])  # RFC 2606 name, RFC 5737 address
def test_a_host_that_does_not_resolve_or_is_not_ours_is_address_unavailable(host: str) -> None:
    with pytest.raises(UserloopError) as caught:
        claim(host, 0)
    assert caught.value.code == "address_unavailable" and caught.value.field == "--host"
    assert f"cannot listen on {host}:0" in str(caught.value)


def test_a_free_port_is_claimed_and_listening() -> None:
    sock = claim("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the backlog takes the connection before any server runs
    finally:
        sock.close()
