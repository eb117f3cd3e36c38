"""A saved programme's points ledger: the one place that turns a programme's definition (its zone and wallets)
into the :class:`~userloop.membership.ledger.Ledger` that books its points."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from sqlalchemy import select
from sqlalchemy.engine import Engine

from userloop.core.errors import ValidationError
from userloop.membership.ledger import Ledger
from userloop.membership.ledger import Programme as Book
from userloop.membership.members import ProgrammeRow, Programmes, SavedProgramme
from userloop.membership.policy import WalletPolicy
from userloop.store.meta import MetaStore, Project


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


#: Ledgers by engine and (project, programme, version): a request reads the programme's version, not its definition.
_LEDGERS: WeakKeyDictionary[Engine, dict[tuple[int, int, int], Ledger]] = WeakKeyDictionary()


def ledger_for(meta: MetaStore, project: Project, programme: int) -> Ledger:
    """The ledger of ``programme`` in ``project``: its zone and its wallets' policies (``unknown_programme`` for a
    programme the project lacks; ``points_invalid`` for a wallet the programme does not define)."""
    with meta.session() as s:
        version = s.scalar(
            select(ProgrammeRow.version).where(ProgrammeRow.id == programme, ProgrammeRow.project_id == project.id)
        )
    known = _LEDGERS.setdefault(meta.engine, {})
    key = (project.id, programme, version or 0)
    if version is None or key not in known:
        known[key] = ledger_of(meta, Programmes(meta, project).get(programme))
    return known[key]
