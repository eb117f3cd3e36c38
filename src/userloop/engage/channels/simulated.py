"""The simulated channel: delivery to the people of the simulated business during a rehearsal
(:mod:`userloop.experiment.rehearsal`), through the same interface as every provider
(:class:`~userloop.engage.channels.base.Channel`).

A channel of provider ``simulated`` (kind ``push`` or ``sms``) is saved like any other (``userloop channels save``),
so journeys, delivery rules and reachability treat it as a real one: the runtime reads the address and the
reachability properties from the profile (push: ``push_token``, ``push_enabled`` and ``app_uninstalled``; SMS:
``phone``). Its adapter exists only inside a rehearsal, which hands each message to the simulated person it is for
(:class:`Audience`): the simulation checks the person's true state at the moment of sending (push switched off, app
uninstalled, no address) and refuses the message (``failed``, not retryable) or lets it act on the person's
behaviour. A message whose ``coupon_param`` parameter is filled (a material with ``params: {"coupon": "{{
benefit.code }}"}``) delivers a coupon; any other message is a nudge (the simulator's push response).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from userloop.engage.channels.base import ChannelKind, Delivery, Message
from userloop.engage.channels.sms import ProviderConfig

#: What a delivered message is to the simulated person.
Treatment = Literal["coupon", "push"]
#: The kinds a simulated channel may have.
SIMULATED_KINDS: tuple[ChannelKind, ...] = ("push", "sms")


class SimulatedSettings(ProviderConfig):
    """A simulated channel's settings: the material parameter whose value, when not empty, makes the message a
    coupon."""

    coupon_param: str = "coupon"


class Audience(Protocol):
    """The simulated people as a channel sees them (the rehearsal's population)."""

    def receive(self, person: int, kind: ChannelKind, treatment: Treatment) -> str | None:
        """Deliver to the person with userloop key ``person``; None when delivered, else why not (``push_off``,
        ``uninstalled``, ``no_address``, ``unknown_person``)."""
        ...


class SimulatedChannel:
    """A :class:`~userloop.engage.channels.base.Channel` whose provider is the simulated business."""

    def __init__(
        self, name: str, kind: ChannelKind, audience: Audience, settings: SimulatedSettings | None = None
    ) -> None:
        self.name = name
        self.kind: ChannelKind = kind
        self.audience = audience
        self.settings = settings or SimulatedSettings()

    def send(self, messages: Sequence[Message]) -> list[Delivery]:
        out = []
        for m in messages:
            treatment: Treatment = "coupon" if m.params.get(self.settings.coupon_param) else "push"
            refused = self.audience.receive(m.person, self.kind, treatment)
            if refused is None:
                out.append(Delivery(m.key, "sent", provider_id=f"sim:{m.key}"))
            else:
                out.append(Delivery(m.key, "failed", error=refused, retryable=False))
        return out

    def close(self) -> None:
        return None
