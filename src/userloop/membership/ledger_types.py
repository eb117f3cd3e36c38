"""The points ledger's operations and replies (:mod:`userloop.membership.ledger`), apart from the module that books
them, so the API client and the operations' types load without the database engines."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from userloop.membership.policy import MAX_POINTS

#: The largest person id (the stores' signed 64-bit ids).
MAX_PERSON = 2**63 - 1
#: The creation time of a new wallet row until its first write sets it.
_EPOCH = datetime(1970, 1, 1)
#: Above every database id: the order of lots not yet given one.
_EPOCH_ID = 2**63
#: Most operations in one batch.
MAX_BATCH = 1000
#: The prefix of the request ids the ledger writes itself (expiries); a caller's request id cannot start with it.
_SYSTEM = "$"

Points = Annotated[int, Field(strict=True, ge=1, le=MAX_POINTS, description="Whole points, 1 … 10^12.")]


def _not_zero(value: int) -> int:
    if value == 0:
        raise ValueError("an adjustment of 0 points changes nothing; give a positive or negative amount")
    return value


SignedPoints = Annotated[
    int,
    Field(strict=True, ge=-MAX_POINTS, le=MAX_POINTS, description="Whole points, ±1 … 10^12 (not 0)."),
    AfterValidator(_not_zero),
]
Person = Annotated[int, Field(strict=True, ge=0, le=MAX_PERSON, description="The member's user id.")]
WalletName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]
RequestId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][\x21-\x7e]*$",
        description="The caller's id of this write (printable ASCII, no spaces); a retry sends the same one.",
    ),
]
Note = Annotated[str | None, Field(max_length=200)]


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    person: Person
    request_id: RequestId
    reason: Note = None
    ref: Annotated[str | None, Field(max_length=100, description="The business's reference (an order).")] = None


class Earn(_Op):
    """Credit ``amount`` points as a new lot; it lapses and unlocks by the wallet's policy unless given here."""

    op: Literal["earn"] = "earn"
    wallet: WalletName = "points"
    amount: Points
    expires_at: datetime | None = Field(default=None, description="Override the wallet's expiry (UTC).")
    pending_days: Annotated[int | None, Field(ge=0, le=3650, description="Override the wallet's pending days.")] = None


class Spend(_Op):
    """Debit ``amount`` spendable points, earliest-expiring lots first."""

    op: Literal["spend"] = "spend"
    wallet: WalletName = "points"
    amount: Points


class Reverse(_Op):
    """Undo the earning, spending or adjustment whose entry id is ``transfer_id`` (see the module's rules)."""

    op: Literal["reverse"] = "reverse"
    transfer_id: Annotated[int, Field(strict=True, ge=1, le=MAX_PERSON, description="The entry to undo.")]


class Adjust(_Op):
    """An operator's correction: credit (a new lot, spendable at once) or debit (like a spending)."""

    op: Literal["adjust"] = "adjust"
    wallet: WalletName = "points"
    amount: SignedPoints


Operation = Annotated[Earn | Spend | Reverse | Adjust, Field(discriminator="op")]
_KINDS = ("earn", "spend", "reverse", "adjust")
_OPERATION: TypeAdapter[Earn | Spend | Reverse | Adjust] = TypeAdapter(Operation)


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Allocation(Reply):
    """Points an entry took from a lot (negative: gave back)."""

    lot_id: int
    amount: int


class Posted(Reply):
    """What one write booked. A replay of its request id returns the same, with ``replayed`` true."""

    entry_id: int
    request_id: str
    kind: str
    person: int
    wallet: str
    amount: int
    occurred_at: datetime
    transfer_id: int | None = None
    lot_id: int | None = Field(default=None, description="The lot an earning (or a credit) made.")
    spendable_at: datetime | None = None
    expires_at: datetime | None = None
    allocations: list[Allocation] = Field(default_factory=list)
    shortfall: int = Field(default=0, description="Of a reversed earning: points already spent, not taken back.")
    spendable_after: int
    pending_after: int
    replayed: bool = False


class Rejected(Reply):
    """Why one operation of a batch was not booked."""

    code: str
    field: str | None = None
    message: str


class BatchItem(Reply):
    index: int
    posted: Posted | None = None
    rejected: Rejected | None = None


class BatchResult(Reply):
    items: list[BatchItem]
    posted: int
    rejected: int


class Expiring(Reply):
    """Points lapsing at the end of one local day (the day before ``expires_at`` midnight is the last to spend)."""

    date: date
    points: int


class Balance(Reply):
    person: int
    wallet: str
    spendable: int
    pending: int
    expiring: list[Expiring] = Field(description="Points lapsing within the window, by the day they lapse.")


class HistoryPage(Reply):
    entries: list[Posted]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page; null at the end.")


class ExpiryRun(Reply):
    members: int
    lots: int
    points: int
