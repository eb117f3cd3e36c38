"""Active and passive events: what a person does, and what the platform sends to a person.

Every event name in a project's registry is **active** (the person did something: opened the app, viewed an
item, paid) or **passive** (something was done *to* the person: a push or an e-mail was delivered, a coupon or a
benefit was granted). Amplitude calls the second kind "inactive events". Everything the product calls "active"
counts active events only: DAU/WAU/MAU and ``$any`` in analyses, retention's "any event" return, lifecycle,
stickiness, a person's first and last seen, activity tags and the user models. A definition that names a passive
event (a funnel step ``push_received``, a trend of ``coupon_received``) still counts it.

A new event name is passive when it is one of :data:`DEFAULT_PASSIVE_EVENTS`, the delivery and grant events that
servers and the journeys runtime emit; every other name starts active (:func:`default_active`, the one place that
decides a name's default). A project can change any event (``userloop events set-active NAME --passive``,
``PUT /api/v1/event-names/{event}``).

The rule "this row's event is active" as SQL is :func:`userloop.store.activity.active_cond`, built from a
project's passive names; it lives one layer up, in ``store/``, because it builds a statement tree and this layer
imports nothing above it.
"""

from __future__ import annotations

#: Event names that are passive when first seen: deliveries and grants sent to a person by the platform or a
#: server. Exact names only: a suffix rule would misjudge a person's own ``comment_sent`` or ``order_received``.
DEFAULT_PASSIVE_EVENTS: frozenset[str] = frozenset(
    {
        # pushes
        "push_sent",
        "push_delivered",
        "push_received",
        # in-app messages, inbox, generic messages
        "message_sent",
        "message_delivered",
        "inbox_delivered",
        # e-mail
        "email_sent",
        "email_delivered",
        "email_bounced",
        # text messages
        "sms_sent",
        "sms_delivered",
        # coupons, benefits, points granted by the platform
        "coupon_received",
        "coupon_granted",
        "benefit_granted",
        "points_granted",
        # webhooks a journey calls about the person
        "webhook_delivered",
        # the journeys runtime's own delivery records (opened, clicked and unsubscribed are the person's acts)
        "$message_sent",
        "$message_delivered",
        "$message_failed",
        "$message_capped",
        "$benefit_granted",
        # the member system's records (userloop.membership.report; ``$checked_in`` is the member's own act)
        "$points_earned",
        "$points_spent",
        "$points_expired",
        "$points_reversed",
        "$points_adjusted",
        "$points_expiring",
        "$member_joined",
        "$member_level_up",
        "$member_level_down",
        # the arm a person was assigned in an experiment (userloop.experiment.assignment)
        "$experiment_exposure",
    }
)


def default_active(event: str) -> bool:
    """The flag a newly seen event name starts with: active (True) unless it is one of
    :data:`DEFAULT_PASSIVE_EVENTS`. The registry's new rows, the flag read from a store made before the flag
    existed and the upgrade that adds the flag all take it from here."""
    return event not in DEFAULT_PASSIVE_EVENTS
