"""What a points-exchange redemption gives back (:mod:`userloop.membership.exchange`), apart from the module that
books it, so the API client loads it without the database engines."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

#: A redemption's request id: as the ledger's, shorter, since the ledger's ids are made from it with a prefix.
ExchangeRequestId = Annotated[
    str,
    Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][\x21-\x7e]*$",
          description="The caller's id of this redemption (printable ASCII, no spaces); a retry sends the same one."),
]  # fmt: skip


class Redeemed(BaseModel):
    """What a redemption gave: the coupon, the points it cost and the member's spendable points after it."""

    item: str
    benefit: str
    points: int
    wallet: str
    entry_id: int
    code: str
    amount: float
    threshold: float
    valid_until: datetime
    spendable_after: int
    replayed: bool
