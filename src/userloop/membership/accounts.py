"""A saved programme's points ledger: the one place that turns a programme's definition (its zone and wallets)
into the :class:`~userloop.membership.ledger.Ledger` that books its points."""

from __future__ import annotations

from userloop.core.errors import ValidationError
from userloop.membership.ledger import Ledger
from userloop.membership.ledger import Programme as Book
from userloop.membership.members import SavedProgramme
from userloop.membership.policy import WalletPolicy
from userloop.store.meta import MetaStore


def ledger_of(meta: MetaStore, saved: SavedProgramme) -> Ledger:
    """The ledger of ``saved``; a wallet the programme does not define is refused (``points_invalid``, naming the
    field ``wallet``)."""
    wallets = {w.name: w for w in saved.definition.wallets}

    def wallet(name: str) -> WalletPolicy:
        if name not in wallets:
            known = ", ".join(sorted(wallets))
            raise ValidationError(f"programme {saved.name!r} has no wallet {name!r} (it has: {known})",
                                  code="points_invalid", field="wallet")  # fmt: skip
        return wallets[name]

    book = Book(project_id=saved.project_id, programme_id=saved.id, timezone=saved.definition.timezone, wallets=wallet)
    return Ledger(meta.engine, book)
