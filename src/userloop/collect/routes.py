"""The collector's route table: which path serves which wire format, with which methods.

One table for every face that routes SDK traffic: the FastAPI routes that document it in OpenAPI
(:mod:`userloop.api.routers.collector`), the bare ASGI fast path that serves it (:mod:`userloop.api.fastpath`),
and the HTTP limits that exempt it from per-address limits and allow CORS on it (:mod:`userloop.api.limits`).
"""

from __future__ import annotations

from dataclasses import dataclass

from userloop.collect.mixpanel import MIXPANEL
from userloop.collect.posthog import POSTHOG
from userloop.collect.segment import SEGMENT
from userloop.collect.sensors import SENSORS
from userloop.collect.wire import WireFormat


@dataclass(frozen=True)
class Route:
    """A collector path: the wire format that decodes it, the message kind it implies, its methods and summary."""

    wire: WireFormat
    kind: str
    methods: tuple[str, ...]
    summary: str


#: The native collector (Sensors records as JSON) sits under the API prefix; browsers reach it through CORS too.
NATIVE_PATHS = frozenset({"/api/v1/events:batch"})


def _table() -> dict[str, Route]:
    routes = {
        "/sa": Route(SENSORS, "", ("GET", "POST"), "Sensors Analytics: data / data_list (base64, gzip=1)"),
        "/debug": Route(
            SENSORS, "debug", ("POST",), "Sensors Analytics debug mode (the SDK's DebugConsumer posts here)"
        ),
        "/sa/debug": Route(
            SENSORS, "debug", ("POST",), "Sensors Analytics debug mode: validate, write nothing (Dry-Run: true)"
        ),
        "/v1/batch": Route(SEGMENT, "batch", ("POST",), "Segment: a batch of messages"),
    }
    for kind in ("track", "identify", "alias", "page", "screen", "group"):
        routes[f"/v1/{kind}"] = Route(SEGMENT, kind, ("POST",), f"Segment: one {kind} message")
    for path in ("/batch/", "/capture/", "/e/", "/i/v0/e/"):
        routes[path] = Route(POSTHOG, "", ("POST",), "PostHog: events (api_key in the body; gzip accepted)")
    routes["/track"] = Route(MIXPANEL, "track", ("GET", "POST"), "Mixpanel: events (form data=…)")
    routes["/import"] = Route(MIXPANEL, "import", ("POST",), "Mixpanel: historical events")
    routes["/engage"] = Route(MIXPANEL, "engage", ("GET", "POST"), "Mixpanel: profile updates")
    return routes


#: path → route, for every SDK wire format.
ROUTES: dict[str, Route] = _table()


def is_collector(path: str) -> bool:
    """Whether ``path`` takes SDK traffic (an SDK route or the native collector)."""
    return path in ROUTES or path in NATIVE_PATHS
