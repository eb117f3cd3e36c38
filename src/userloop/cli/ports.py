"""Claiming the service's address before anything else runs.

``userloop demo`` loads for minutes before it serves, and ``userloop serve`` opens the workspace first: a taken
port found only at the end wastes that time and ends with errno 98. :func:`claim` binds the socket up front and
the server is handed that very socket (``uvicorn.Server.run(sockets=…)``), so the check and the use are one
act: no other process can take the port in between.
"""

from __future__ import annotations

import errno
import socket

from userloop.core.errors import UserloopError

#: How far above a taken port to look for a free one to suggest.
SUGGEST_RANGE = 20


def claim(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, for the server to take over. It listens at once, because on Linux a
    merely bound socket does not keep another SO_REUSEADDR socket off the port; connections made before the
    server starts wait in the backlog and are answered when it does.

    Raises ``port_in_use`` naming a free port to pass instead when the port is taken, and ``address_unavailable``
    when ``host`` does not resolve or is not an address of this machine."""
    try:
        return _bind(host, port, listen=True)
    except socket.gaierror as exc:
        raise UserloopError(
            f"cannot listen on {host}:{port}: the host name does not resolve ({exc.strerror or exc}) / "
            f"无法监听 {host}:{port}：主机名无法解析",
            code="address_unavailable",
            field="--host",
        ) from exc
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            free = next_free(host, port)
            instead = f"pass --port {free}" if free is not None else "pass another --port"
            raise UserloopError(
                f"port {port} on {host} is in use; {instead} or stop the other process / "
                f"端口 {port} 已被占用：请{'使用 --port ' + str(free) if free is not None else '换一个 --port'}"
                "，或停止占用它的进程",
                code="port_in_use",
                field="--port",
            ) from exc
        raise UserloopError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} / 无法监听 {host}:{port}",
            code="address_unavailable",
            field="--host",
        ) from exc


def next_free(host: str, port: int) -> int | None:
    """The first port above ``port`` that ``host`` can bind now (within :data:`SUGGEST_RANGE`), or None."""
    for candidate in range(port + 1, min(port + 1 + SUGGEST_RANGE, 65536)):
        try:
            _bind(host, candidate).close()
        except OSError:
            continue
        return candidate
    return None


def _bind(host: str, port: int, *, listen: bool = False) -> socket.socket:
    """Bind as uvicorn does (SO_REUSEADDR: a port left in TIME_WAIT is free; one another process listens on is
    not), for an IPv4 or IPv6 address or a host name."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        if listen:
            sock.listen(2048)  # uvicorn's default backlog
    except BaseException:
        sock.close()
        raise
    return sock
