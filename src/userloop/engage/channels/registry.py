"""A project's configured channels: validated settings per (kind, provider), secrets encrypted at rest, adapters
opened from them.

A channel is a row of the ``channels`` table (:class:`~userloop.engage.tables.ChannelRow`): a name unique in its
project, a ``kind`` (email, sms, push, webhook, inbox), a ``provider`` and its settings as JSON. The settings are
validated by the provider's model (:data:`SETTINGS`: the SMS and push adapters' own ``*Config`` models, and
:class:`SmtpSettings`, :class:`WebhookSettings`, :class:`InboxSettings` here) plus the fields every channel has
(:class:`CommonSettings`: which profile property holds the address, which profile values make a person reachable,
which subscription group the channel belongs to). The stored JSON keeps every field top-level and readable, the
secret ones (:data:`SECRET_FIELDS`) as ``enc:v1:`` values (:mod:`userloop.engage.secrets`): the journeys runtime
reads ``address_property``, ``reach`` and ``url`` from it without the key.

Listings (:func:`list_channels`, :func:`get_channel`) show a secret as ``"********"``, never its value. On update,
a secret field that is omitted or given back as ``"********"`` keeps its stored value (the form an operator edits
came from a listing); any other value replaces it, and ``None`` clears an optional one.

:func:`open_channel` builds the adapter with the secrets decrypted; :class:`ChannelBook` keeps one open adapter per
channel name for a worker (adapters hold connection pools) and reopens those whose row changed on
:meth:`ChannelBook.refresh`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import pydantic
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from userloop.core.errors import NotFoundError, ValidationError
from userloop.engage.channels.base import Channel, ChannelError
from userloop.engage.channels.email import SmtpChannel, parse_address
from userloop.engage.channels.inbox import InboxChannel
from userloop.engage.channels.push import Fcm, FcmConfig, Getui, GetuiConfig, JPush, JPushConfig
from userloop.engage.channels.simulated import SimulatedSettings
from userloop.engage.channels.sms import (
    AliyunSms,
    AliyunSmsConfig,
    ProviderConfig,
    TencentSms,
    TencentSmsConfig,
    TwilioSms,
    TwilioSmsConfig,
)
from userloop.engage.channels.webhook import WebhookChannel
from userloop.engage.secrets import MASK, SecretBox
from userloop.engage.tables import ChannelRow
from userloop.store.meta import MetaStore

Clock = Callable[[], float]
JsonScalar = str | int | float | bool | None

_NAME = re.compile(r"[\w.-]{1,100}")


class SmtpSettings(ProviderConfig):
    """An SMTP relay (:class:`~userloop.engage.channels.email.SmtpChannel`): ``sender`` is the From
    (``"运营团队 <noreply@example.com>"`` or a bare address), ``domain`` the right side of every Message-ID and the
    EHLO name; ``username`` and ``password`` go together (AUTH after STARTTLS when ``starttls``)."""

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    sender: str = Field(min_length=3, max_length=320)
    username: str | None = Field(None, min_length=1, max_length=320)
    password: str | None = Field(None, repr=False)
    starttls: bool = False
    domain: str = "userloop.local"
    timeout: float = Field(10.0, gt=0, le=300)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if parse_address(value) is None:
            raise ValueError("not an e-mail address (name <local@domain> or local@domain)")
        return value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if parse_address(f"x@{value}") is None:
            raise ValueError("not a domain name")
        return value


class WebhookSettings(ProviderConfig):
    """Signed JSON webhooks (:class:`~userloop.engage.channels.webhook.WebhookChannel`): every message of the
    channel goes to ``url`` (the runtime puts it in each message's ``to``), signed with ``secret``."""

    url: str = Field(min_length=1, max_length=2000)
    secret: str = Field(repr=False)
    timeout: float = Field(10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c in value for c in "\r\n\t "):
            raise ValueError("not an http(s) URL with a host")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(value.encode("utf-8")) < 16:
            raise ValueError("at least 16 bytes")
        return value


class InboxSettings(ProviderConfig):
    """The in-app inbox (:class:`~userloop.engage.channels.inbox.InboxChannel`): nothing to set."""


#: The settings model of each (kind, provider).
SETTINGS: dict[tuple[str, str], type[ProviderConfig]] = {
    ("email", "smtp"): SmtpSettings,
    ("webhook", "webhook"): WebhookSettings,
    ("inbox", "inbox"): InboxSettings,
    ("sms", "aliyun"): AliyunSmsConfig,
    ("sms", "tencent"): TencentSmsConfig,
    ("sms", "twilio"): TwilioSmsConfig,
    ("push", "jpush"): JPushConfig,
    ("push", "getui"): GetuiConfig,
    ("push", "fcm"): FcmConfig,
    ("push", "simulated"): SimulatedSettings,
    ("sms", "simulated"): SimulatedSettings,
}

#: The settings of each provider that are credentials: encrypted at rest, masked in listings.
SECRET_FIELDS: dict[str, frozenset[str]] = {
    "smtp": frozenset({"password"}),
    "webhook": frozenset({"secret"}),
    "inbox": frozenset(),
    "aliyun": frozenset({"access_key_secret"}),
    "tencent": frozenset({"secret_key"}),
    "twilio": frozenset({"auth_token"}),
    "jpush": frozenset({"master_secret"}),
    "getui": frozenset({"master_secret"}),
    "fcm": frozenset({"private_key_pem", "access_token"}),
    "simulated": frozenset(),
}

#: The profile property that holds a person's address, per kind (the runtime's default too).
DEFAULT_ADDRESS_PROPERTY: dict[str, str] = {"email": "email", "sms": "phone", "push": "push_token"}
#: The profile values a person needs to be reachable, per kind.
DEFAULT_REACH: dict[str, dict[str, JsonScalar]] = {"push": {"push_enabled": True, "app_uninstalled": False}}


class CommonSettings(BaseModel):
    """Fields every channel may carry. ``address_property``: the profile property holding the address (default
    per kind: email → ``email``, sms → ``phone``, push → ``push_token``); ``reach``: profile property → the value a
    person must have to be sent to (push: ``push_enabled`` true and ``app_uninstalled`` false); ``topic``: the
    subscription group an opt-out applies to (default: the kind)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address_property: str | None = Field(None, min_length=1, max_length=100)
    reach: dict[str, JsonScalar] | None = None
    topic: str | None = Field(None, min_length=1, max_length=100)

    @field_validator("reach")
    @classmethod
    def _reach(cls, value: dict[str, JsonScalar] | None) -> dict[str, JsonScalar] | None:
        if value is not None and any(not k or len(k) > 100 for k in value):
            raise ValueError("property names are 1 to 100 characters")
        return value


COMMON_FIELDS = frozenset(CommonSettings.model_fields)


class ChannelInfo(BaseModel):
    """A configured channel as listings show it: secrets masked as ``"********"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    project_id: int
    name: str
    kind: str
    provider: str
    settings: dict[str, Any]
    rate_per_second: float | None
    enabled: bool
    created_at: datetime


# -- validation ----------------------------------------------------------------------------------------------------


def _invalid(exc: pydantic.ValidationError, prefix: str = "") -> ValidationError:
    """The first of pydantic's errors as ours, naming the field (never echoing the value: it may be a secret)."""
    first = exc.errors()[0]
    loc = first["loc"][:2] if first["loc"][:1] == ("reach",) else first["loc"]  # not the union's member tags
    field = ".".join(str(part) for part in loc) or None
    where = f"{prefix}{field}" if field else prefix.rstrip(".") or "settings"
    return ValidationError(f"{where}: {first['msg']}", code="channel_invalid", field=field)


def settings_model(kind: str, provider: str) -> type[ProviderConfig]:
    model = SETTINGS.get((kind, provider))
    if model is None:
        kinds = sorted({k for k, _ in SETTINGS})
        if kind not in kinds:
            raise ValidationError(f"unknown channel kind {kind!r}; one of {', '.join(kinds)}", code="channel_invalid",
                                  field="kind")  # fmt: skip
        providers = sorted(p for k, p in SETTINGS if k == kind)
        raise ValidationError(f"unknown {kind} provider {provider!r}; one of {', '.join(providers)}",
                              code="channel_invalid", field="provider")  # fmt: skip
    return model


def validate_settings(kind: str, provider: str, settings: Mapping[str, Any]) -> tuple[ProviderConfig, dict[str, Any]]:
    """The provider's settings model and the whole settings as stored in clear (defaults filled, common fields
    resolved). Raises :class:`ValidationError` ``channel_invalid`` naming the field at fault."""
    model = settings_model(kind, provider)
    if not isinstance(settings, Mapping):
        raise ValidationError("settings must be an object", code="channel_invalid", field="settings")
    common_part = {k: v for k, v in settings.items() if k in COMMON_FIELDS}
    own_part = {k: v for k, v in settings.items() if k not in COMMON_FIELDS}
    try:
        common = CommonSettings.model_validate(common_part)
    except pydantic.ValidationError as exc:
        raise _invalid(exc) from exc
    try:
        config = model.model_validate(own_part)
    except pydantic.ValidationError as exc:
        if provider == "fcm" and not exc.errors()[0]["loc"]:  # the model's check that some credential is set
            raise ValidationError("set client_email and private_key_pem (a service account), or access_token",
                                  code="channel_invalid", field="private_key_pem") from exc  # fmt: skip
        raise _invalid(exc) from exc
    _check_provider(provider, config)
    stored: dict[str, Any] = config.model_dump(mode="json")
    stored["address_property"] = common.address_property or DEFAULT_ADDRESS_PROPERTY.get(kind)
    stored["reach"] = dict(common.reach) if common.reach is not None else dict(DEFAULT_REACH.get(kind, {}))
    stored["topic"] = common.topic or kind
    return config, stored


def _check_provider(provider: str, config: ProviderConfig) -> None:
    """The checks the adapters make when they are built, made when the settings are saved."""
    if isinstance(config, SmtpSettings) and (config.username is None) != (config.password is None):
        raise ValidationError("username and password go together", code="channel_invalid", field="username")
    if isinstance(config, TwilioSmsConfig) and not (config.from_number or config.messaging_service_sid):
        raise ValidationError("set from_number or messaging_service_sid", code="channel_invalid", field="from_number")
    if isinstance(config, FcmConfig) and config.private_key_pem:
        try:
            key = serialization.load_pem_private_key(config.private_key_pem.encode("utf-8"), password=None)
        except (ValueError, TypeError) as exc:
            raise ValidationError("private_key_pem: not a PEM private key without a passphrase",
                                  code="channel_invalid", field="private_key_pem") from exc  # fmt: skip
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValidationError("private_key_pem: not an RSA key", code="channel_invalid", field="private_key_pem")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError("a channel name is 1 to 100 letters, digits, '_', '.' or '-'", code="channel_invalid",
                              field="name")  # fmt: skip


# -- storage -------------------------------------------------------------------------------------------------------


def save_channel(
    meta: MetaStore,
    project_id: int,
    name: str,
    kind: str,
    provider: str,
    settings: Mapping[str, Any],
    box: SecretBox,
    rate_per_second: float | None = None,
    *,
    enabled: bool | None = None,
) -> ChannelRow:
    """Create or replace the channel ``name`` of the project with validated settings, secrets encrypted.

    Replacing keeps a secret field's stored value when the new settings omit it or give ``"********"`` (and the
    kind and provider are unchanged); other fields take the new settings (omitted ones their defaults), and
    ``rate_per_second`` the given one (None: no limit of its own). ``enabled`` None keeps a channel's state (a new
    one is enabled)."""
    _check_name(name)
    if rate_per_second is not None and not (0 < rate_per_second <= 1_000_000):
        raise ValidationError("rate_per_second must be positive", code="channel_invalid", field="rate_per_second")
    settings_model(kind, provider)
    secret_fields = SECRET_FIELDS.get(provider, frozenset())
    if not isinstance(settings, Mapping):
        raise ValidationError("settings must be an object", code="channel_invalid", field="settings")
    with meta.session.begin() as s:
        row = s.scalar(select(ChannelRow).where(ChannelRow.project_id == project_id, ChannelRow.name == name))
        old: dict[str, Any] = {}
        if row is not None and row.kind == kind and row.provider == provider:
            old = json.loads(row.config or "{}")
        given = dict(settings)
        kept: dict[str, str] = {}
        for field in secret_fields:
            if field in given and given[field] != MASK:
                continue
            given.pop(field, None)
            previous = old.get(field)
            if isinstance(previous, str) and box.is_encrypted(previous):
                kept[field] = previous
                given[field] = box.decrypt(previous)  # to validate the whole; stored again as it was
        _config, stored = validate_settings(kind, provider, given)
        for field in secret_fields:
            value = stored.get(field)
            if value is not None:
                stored[field] = kept[field] if field in kept else box.encrypt(str(value))
        text = json.dumps(stored, ensure_ascii=False, sort_keys=True)
        if row is None:
            row = ChannelRow(
                project_id=project_id,
                name=name,
                kind=kind,
                provider=provider,
                config=text,
                rate_per_second=rate_per_second,
                enabled=True if enabled is None else enabled,
            )
            s.add(row)
        else:
            row.kind = kind
            row.provider = provider
            row.config = text
            row.rate_per_second = rate_per_second
            if enabled is not None:
                row.enabled = enabled
    return row


def _row(meta: MetaStore, project_id: int, name: str) -> ChannelRow:
    with meta.session() as s:
        row = s.scalar(select(ChannelRow).where(ChannelRow.project_id == project_id, ChannelRow.name == name))
    if row is None:
        raise NotFoundError(f"no channel {name!r} in this project", code="unknown_channel", field="name")
    return row


def _info(row: ChannelRow) -> ChannelInfo:
    config = json.loads(row.config or "{}")
    secret_fields = SECRET_FIELDS.get(row.provider, frozenset())
    settings = {
        k: (MASK if v is not None and (k in secret_fields or SecretBox.is_encrypted(v)) else v)
        for k, v in config.items()
    }
    return ChannelInfo(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        kind=row.kind,
        provider=row.provider,
        settings=settings,
        rate_per_second=row.rate_per_second,
        enabled=row.enabled,
        created_at=row.created_at,
    )


def list_channels(meta: MetaStore, project_id: int) -> list[ChannelInfo]:
    """The project's channels by name, secrets masked."""
    with meta.session() as s:
        rows = list(s.scalars(select(ChannelRow).where(ChannelRow.project_id == project_id).order_by(ChannelRow.name)))
    return [_info(row) for row in rows]


def get_channel(meta: MetaStore, project_id: int, name: str) -> ChannelInfo:
    """One channel, secrets masked; :class:`NotFoundError` ``unknown_channel`` when there is none of that name."""
    return _info(_row(meta, project_id, name))


def delete_channel(meta: MetaStore, project_id: int, name: str) -> None:
    """Remove the channel; ``unknown_channel`` when there is none of that name."""
    with meta.session.begin() as s:
        row = s.scalar(select(ChannelRow).where(ChannelRow.project_id == project_id, ChannelRow.name == name))
        if row is None:
            raise NotFoundError(f"no channel {name!r} in this project", code="unknown_channel", field="name")
        s.delete(row)


# -- adapters ------------------------------------------------------------------------------------------------------


def open_channel(
    channel: ChannelRow | ChannelInfo, box: SecretBox, meta: MetaStore, *, clock: Clock = time.time
) -> Channel:
    """The adapter of a stored channel, its secrets decrypted (a :class:`ChannelInfo` is read again from ``meta``:
    it holds only masks). ``clock`` (seconds since the epoch) is handed to the adapters that sign with a time."""
    row = _row(meta, channel.project_id, channel.name) if isinstance(channel, ChannelInfo) else channel
    stored = json.loads(row.config or "{}")
    for field in SECRET_FIELDS.get(row.provider, frozenset()):
        value = stored.get(field)
        if value is not None:
            stored[field] = box.decrypt(value) if box.is_encrypted(value) else value
    config, _ = validate_settings(row.kind, row.provider, stored)
    name = row.name
    if isinstance(config, SmtpSettings):
        return SmtpChannel(
            name,
            config.host,
            config.port,
            config.sender,
            username=config.username,
            password=config.password,
            starttls=config.starttls,
            timeout=config.timeout,
            domain=config.domain,
            clock=clock,
        )
    if isinstance(config, WebhookSettings):
        return WebhookChannel(name, config.secret.encode("utf-8"), config.timeout, clock=clock)
    if isinstance(config, InboxSettings):
        return InboxChannel(
            meta, row.project_id, name, clock=lambda: datetime.fromtimestamp(clock(), UTC).replace(tzinfo=None)
        )
    if isinstance(config, SimulatedSettings):
        raise ChannelError(
            f"the channel {name!r} delivers to simulated people: only a rehearsal (userloop.experiment.rehearsal) "
            "opens it",
            code="channel_unavailable",
        )
    if isinstance(config, AliyunSmsConfig):
        return AliyunSms(config, name=name, clock=clock)
    if isinstance(config, TencentSmsConfig):
        return TencentSms(config, name=name, clock=clock)
    if isinstance(config, TwilioSmsConfig):
        return TwilioSms(config, name=name)
    if isinstance(config, JPushConfig):
        return JPush(config, name=name)
    if isinstance(config, GetuiConfig):
        return Getui(config, name=name, clock=clock)
    return Fcm(cast(FcmConfig, config), name=name, clock=clock)


class ChannelBook:
    """The open adapters of one project's channels, by name, for a delivery worker.

    :meth:`get` opens a channel on first use and hands back the same adapter after (they pool connections); a
    ``lane`` above 0 is another adapter of the same channel (its own connection), so a deliverer can send on several
    at once. :meth:`refresh` reads the rows again and closes the adapters of channels changed, disabled or deleted
    since, so the next :meth:`get` opens them with the new settings; :meth:`close` closes them all."""

    def __init__(self, meta: MetaStore, project_id: int, box: SecretBox, *, clock: Clock = time.time) -> None:
        self.meta = meta
        self.project_id = project_id
        self.box = box
        self.clock = clock
        self._open: dict[tuple[str, int], tuple[tuple[str, str, str], Channel]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, lane: int = 0) -> Channel:
        """The open adapter of ``name`` (in ``lane``): ``unknown_channel`` when there is none, :class:`ChannelError`
        when it is disabled."""
        with self._lock:
            held = self._open.get((name, lane))
            if held is not None:
                return held[1]
            row = _row(self.meta, self.project_id, name)
            if not row.enabled:
                raise ChannelError(f"the channel {name!r} is disabled", code="channel_unavailable")
            adapter = open_channel(row, self.box, self.meta, clock=self.clock)
            self._open[(name, lane)] = ((row.kind, row.provider, row.config), adapter)
            return adapter

    def refresh(self) -> None:
        """Close the adapters whose channel changed, was disabled or deleted since it was opened."""
        with self.meta.session() as s:
            rows = {
                r.name: ((r.kind, r.provider, r.config), r.enabled)
                for r in s.scalars(select(ChannelRow).where(ChannelRow.project_id == self.project_id))
            }
        with self._lock:
            for (name, lane), (signature, adapter) in list(self._open.items()):
                now = rows.get(name)
                if now is None or not now[1] or now[0] != signature:
                    del self._open[(name, lane)]
                    adapter.close()

    def close(self) -> None:
        with self._lock:
            opened = [adapter for _, adapter in self._open.values()]
            self._open.clear()
        for adapter in opened:
            adapter.close()
