"""Nuvla's access-control lists: rights, their implications, normalization and checks.

An ACL maps a right to the principals that hold it::

    {"owners": ["user/1"], "view-data": ["group/tether-user"], "edit-meta": ["user/2"]}

Rights imply others (edit-acl ⇒ edit-data, delete, manage, view-acl; edit-data ⇒ edit-meta,
view-data; edit-meta ⇒ view-meta; view-acl ⇒ view-data ⇒ view-meta; delete ⇒ view-meta).
Owners and admins hold every right. Stored ACLs are normalized: every principal listed under
every right it holds by implication, lists sorted and without duplicates, so that a check is a
set lookup and the principals that may view are simply all principals named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from tether.errors import BadRequest

ADMIN = "group/tether-admin"
USER = "group/tether-user"
ANON = "group/tether-anon"

OWNERS = "owners"
VIEW_META = "view-meta"
VIEW_DATA = "view-data"
VIEW_ACL = "view-acl"
EDIT_META = "edit-meta"
EDIT_DATA = "edit-data"
EDIT_ACL = "edit-acl"
MANAGE = "manage"
DELETE = "delete"

RIGHTS: tuple[str, ...] = (
    VIEW_META,
    VIEW_DATA,
    VIEW_ACL,
    EDIT_META,
    EDIT_DATA,
    EDIT_ACL,
    MANAGE,
    DELETE,
)

_DIRECT: dict[str, tuple[str, ...]] = {
    EDIT_ACL: (EDIT_DATA, DELETE, MANAGE, VIEW_ACL),
    EDIT_DATA: (EDIT_META, VIEW_DATA),
    EDIT_META: (VIEW_META,),
    VIEW_ACL: (VIEW_DATA,),
    VIEW_DATA: (VIEW_META,),
    DELETE: (VIEW_META,),
    MANAGE: (VIEW_META,),
}


def _closure(right: str) -> frozenset[str]:
    seen = {right}
    todo = [right]
    while todo:
        for implied in _DIRECT.get(todo.pop(), ()):
            if implied not in seen:
                seen.add(implied)
                todo.append(implied)
    return frozenset(seen)


IMPLIED: dict[str, frozenset[str]] = {r: _closure(r) for r in RIGHTS}

# user/<uuid>, group/<name>, and the session and credential ids that act as principals.
_PRINCIPAL = re.compile(r"^(user|group|session|credential)/[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")

Acl = dict[str, list[str]]


def normalize(acl: object) -> Acl:
    """Validates an ACL from a client and expands it to its normalized form."""
    if not isinstance(acl, Mapping):
        raise BadRequest("acl must be an object mapping rights to lists of principals")
    held: dict[str, set[str]] = {r: set() for r in (OWNERS, *RIGHTS)}
    for right, principals in acl.items():
        if right not in held:
            raise BadRequest(
                f"unknown right '{right}' in acl; rights are: {', '.join((OWNERS, *RIGHTS))}"
            )
        if not isinstance(principals, list) or not all(isinstance(p, str) for p in principals):
            raise BadRequest(f"acl right '{right}' must be a list of principal strings")
        for principal in principals:
            if not _PRINCIPAL.match(principal):
                raise BadRequest(
                    f"invalid principal '{principal}' in acl right '{right}'; "
                    "expected user/<id>, group/<name>, session/<id> or credential/<id>"
                )
            if right == OWNERS:
                held[OWNERS].add(principal)
            else:
                for implied in IMPLIED[right]:
                    held[implied].add(principal)
    if not held[OWNERS]:
        raise BadRequest("acl must name at least one owner")
    return {right: sorted(ps) for right, ps in held.items() if ps}


def principals(acl: Mapping[str, Iterable[str]]) -> set[str]:
    """Every principal named in the ACL; each may at least view the resource's metadata."""
    out: set[str] = set()
    for ps in acl.values():
        out.update(ps)
    return out


def rights_of(acl: Mapping[str, Iterable[str]], claims: frozenset[str]) -> frozenset[str]:
    """The rights ``claims`` hold on a resource with this (normalized) ACL."""
    if ADMIN in claims or claims.intersection(acl.get(OWNERS, ())):
        return frozenset((OWNERS, *RIGHTS))
    held: set[str] = set()
    for right in RIGHTS:
        if claims.intersection(acl.get(right, ())):
            held |= IMPLIED[right]
    return frozenset(held)


def can(acl: Mapping[str, Iterable[str]], claims: frozenset[str], right: str) -> bool:
    return right in rights_of(acl, claims)
