"""Rights, what each implies, and the roles of people's accounts.

A caller (an API token or an operator's account) holds *rights*: ``read`` (analyses, listings), ``analyse``
(saved analyses, tags, segments, models), ``operate`` (journeys, templates, benefits, member runs), ``write``
(events and what a business's backend writes beside them), ``admin`` (keys, projects, channels, programmes,
accounts), and the grant ``pii`` (personal data in clear). Rights imply others (:func:`implied`): ``admin``
implies ``analyse`` and ``operate``, and ``operate`` implies ``analyse``; every place that computes a caller's
rights goes through that one function, tokens and accounts alike.

An account holds a *role* per project (or over every project); a role is a set of rights (:data:`ACCOUNT_ROLES`).

Example::

    >>> sorted(implied({"read", "write", "admin"}))
    ['admin', 'analyse', 'operate', 'read', 'write']
"""

from __future__ import annotations

from collections.abc import Iterable

#: What holding a right implies (transitively, see :func:`implied`).
IMPLIES: dict[str, frozenset[str]] = {
    "admin": frozenset({"analyse", "operate"}),
    "operate": frozenset({"analyse"}),
}
#: The roles of an operator's account, with the rights each holds.
ACCOUNT_ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "analyst": frozenset({"read", "analyse"}),
    "operator": frozenset({"read", "analyse", "operate", "write"}),
    "admin": frozenset({"read", "analyse", "operate", "write", "admin"}),
}
#: Every right and grant, in the order they are listed.
ALL_RIGHTS: tuple[str, ...] = ("read", "analyse", "operate", "write", "admin", "pii")


def implied(held: Iterable[str]) -> frozenset[str]:
    """``held`` with every right it implies: the one place rights are expanded, for tokens and accounts."""
    rights = set(held)
    pending = list(rights)
    while pending:
        for more in IMPLIES.get(pending.pop(), frozenset()):
            if more not in rights:
                rights.add(more)
                pending.append(more)
    return frozenset(rights)


def role_rights(role: str) -> frozenset[str]:
    """The rights of the account role ``role`` (KeyError for an unknown role)."""
    return implied(ACCOUNT_ROLES[role])
