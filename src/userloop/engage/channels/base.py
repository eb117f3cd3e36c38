"""The one interface every channel adapter speaks: a batch of rendered messages in, one delivery result per message
out, in the same order.

The journeys runtime hands an adapter messages whose ``key`` is the outbox's deterministic idempotency key (a hash of
``(journey, version, node, person, occurrence)``). An adapter passes it to its provider wherever the provider's API
has a place for it (the e-mail ``Message-ID``, JPush ``cid``, Getui ``request_id``, Aliyun ``OutId``, Tencent
``SessionContext``, a webhook's ``Idempotency-Key`` header), so a resend after a crash is recognisable downstream.

An adapter never raises for a refused message: it reports ``failed`` with the provider's error code and whether a
retry may succeed. It raises :class:`ChannelError` only when the channel as a whole is unusable (bad credentials,
server down), and the runtime then retries the whole batch later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from userloop.core.errors import UserloopError

ChannelKind = Literal["email", "sms", "push", "webhook", "inbox"]
Category = Literal["marketing", "transactional"]
Status = Literal["sent", "failed"]


@dataclass(frozen=True)
class Message:
    """One rendered message for one person.

    ``to`` is the address for the channel: an e-mail address, an E.164 phone number, a push token or registration
    id, a webhook URL. ``params`` are the named values of a provider-side template (SMS template parameters, push
    extras); ``body`` is the rendered text (HTML when ``html``).
    """

    key: str
    channel: ChannelKind
    person: int
    to: str
    body: str
    subject: str | None = None
    html: bool = False
    params: Mapping[str, str] = field(default_factory=dict)
    category: Category = "marketing"
    unsubscribe_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """What the provider answered for one message: accepted (``sent``) with its id, or refused with a code."""

    key: str
    status: Status
    provider_id: str | None = None
    error: str | None = None
    retryable: bool = False


@dataclass(frozen=True)
class Receipt:
    """A later report from the provider (a delivery receipt, an open, a bounce), matched back to the message by
    ``key`` when the provider echoes it, else by ``provider_id``."""

    status: Literal["delivered", "failed", "opened", "clicked", "unsubscribed"]
    provider_id: str | None = None
    key: str | None = None
    error: str | None = None
    at_ms: int | None = None


class ChannelError(UserloopError):
    """The channel as a whole cannot send now (connection refused, credentials rejected)."""

    code = "channel_unavailable"


class Channel(Protocol):
    """A configured channel: its ``kind`` and instance ``name``, a batch send, and ``close``."""

    kind: ChannelKind
    name: str

    def send(self, messages: Sequence[Message]) -> list[Delivery]:
        """Deliver ``messages`` to the provider; one :class:`Delivery` per message, in order."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
