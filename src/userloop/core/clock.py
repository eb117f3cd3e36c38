"""Time: UTC storage, project time zones, epoch conversions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from userloop.core.errors import ValidationError

DEFAULT_TIMEZONE = "Asia/Shanghai"


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (the form stored in the event tables)."""
    return datetime.now(UTC).replace(tzinfo=None)


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def check_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone, else raise a ValidationError that says so."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown time zone {name!r}; use an IANA name such as 'Asia/Shanghai'") from exc
    return name


def local_midnight_utc_ms(day: date, timezone: str) -> int:
    """Epoch milliseconds of 00:00 on ``day`` in ``timezone``."""
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    return int(local.timestamp() * 1000)


def today_in(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


def days(n: float) -> timedelta:
    return timedelta(days=n)


def parse_day(text: str | None, what: str = "date") -> date | None:
    """``YYYY-MM-DD`` as a date (None stays None); anything else is a ValidationError naming ``what``."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(f"{what} {text!r} is not a date; use YYYY-MM-DD") from exc
