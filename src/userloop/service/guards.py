"""The service's request guards: requests per client address and per API token, failed authentications per
address, and the short-lived token cache. The HTTP face applies them (:mod:`userloop.api.limits`,
:mod:`userloop.api.deps`); the service holds them, so that every face of one service shares the same budgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from userloop.collect.keys import TtlCache
from userloop.collect.limits import TokenBuckets


@dataclass(frozen=True)
class GuardConfig:
    """Request limits of the API, per client address and per key, and the size of the token cache."""

    #: requests per second per client address on every route but the collector's (which has its own limits)
    address_rate: float = 200.0
    address_burst: float = 1_000.0
    #: requests per second per API token
    key_rate: float = 200.0
    key_burst: float = 1_000.0
    #: failed authentications per minute per client address (429 beyond, until the budget refills)
    failed_auths_per_minute: float = 20.0
    #: tokens (valid or not) remembered for a few seconds
    auth_cache_size: int = 10_000
    auth_cache_ttl: float = 5.0


@dataclass
class Guards:
    """The live limiters and the token cache of one service (see :class:`GuardConfig`)."""

    config: GuardConfig = field(default_factory=GuardConfig)
    addresses: TokenBuckets = field(init=False)
    keys: TokenBuckets = field(init=False)
    failed: TokenBuckets = field(init=False)
    auth_cache: TtlCache[Any] = field(init=False)

    def __post_init__(self) -> None:
        c = self.config
        self.addresses = TokenBuckets(c.address_rate, c.address_burst)
        self.keys = TokenBuckets(c.key_rate, c.key_burst)
        per_minute = c.failed_auths_per_minute
        self.failed = TokenBuckets(per_minute / 60.0, per_minute)
        self.auth_cache = TtlCache(c.auth_cache_ttl, c.auth_cache_size)

    def auth_blocked(self, address: str) -> float:
        """Seconds until ``address`` may try a credential again (0: now)."""
        return self.failed.wait(address)

    def auth_failed(self, address: str) -> None:
        self.failed.take(address, 1)
