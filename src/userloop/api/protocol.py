"""The HTTP/1.1 protocol uvicorn serves with, so that an over-long URL reaches the application and gets its 414.

uvicorn's httptools protocol keeps the whole request target and parses it with httptools' URL parser, whose
offsets are 16-bit: from 65,536 bytes on the parse fails and uvicorn answers ``400 text/plain "Invalid HTTP request
received."`` itself, an answer the API does not declare. The protocol made by :func:`uvicorn_options` keeps at most
``MAX_URL_BYTES + 2`` bytes of the target instead (two past the limit: a cut just after a ``?`` loses one), so the
application sees a URL over :data:`~userloop.api.limits.MAX_URL_BYTES` and :class:`~userloop.api.limits.UrlLimit`
answers 414 with the error body; an over-long URL holds no more than that in memory either.

Without httptools (uvicorn lacking its ``standard`` extras) uvicorn's h11 protocol serves, buffering a request's
head up to :data:`H11_MAX_HEAD_BYTES`: its own default, 16 KiB, would refuse URLs the service takes.
"""

from __future__ import annotations

from typing import Any

from userloop.api.limits import MAX_URL_BYTES

#: A request's head (request line and headers) h11 buffers at most: a URL the service takes and room for headers.
H11_MAX_HEAD_BYTES = 1 << 20
#: Bytes of the request target kept: enough that a cut URL is still longer than the limit.
_KEPT_URL_BYTES = MAX_URL_BYTES + 2


def uvicorn_options() -> dict[str, Any]:
    """The ``uvicorn.Config`` options that let every URL reach the application (see the module's docstring)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return {"http": "h11", "h11_max_incomplete_event_size": H11_MAX_HEAD_BYTES}

    class CutUrlProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol keeping the first ``MAX_URL_BYTES + 2`` bytes of the request target."""

        def on_url(self, url: bytes) -> None:
            # llhttp hands the target over in pieces as they arrive; past the kept bytes they are dropped
            room = _KEPT_URL_BYTES - len(self.url)
            if room > 0:
                self.url += url[:room]

    return {"http": CutUrlProtocol}
