"""OCP's default roles (ocp-docs/guide/appendix/1800.ocp-default-roles.md) as permissions.

A permission is a resource and an action: READ, or WRITE (OCP's `*`). ADMIN holds every one.
CREDENTIAL is obfleet's own resource for the password box, which OCP's roles reach through the
managers of what the credentials open. AUDIT (the audit trail) is obfleet's too: read by ADMIN
and by AUDITOR, a role that may read the trail and nothing else, so whoever reviews changes
need not be able to make any; nobody writes it but obfleet itself.
"""

from __future__ import annotations

from enum import StrEnum


class Resource(StrEnum):
    CLUSTER = "CLUSTER"
    OBPROXY = "OBPROXY"
    HOST = "HOST"
    PACKAGE = "PACKAGE"
    TASK = "TASK"
    USER = "USER"
    ROLE = "ROLE"
    CREDENTIAL = "CREDENTIAL"
    AUDIT = "AUDIT"


READ, WRITE = "READ", "WRITE"
Permission = tuple[Resource, str]


def _grant(*spec: str) -> frozenset[Permission]:
    """'HOST:*' grants read and write, 'HOST:READ' grants read."""
    granted: set[Permission] = set()
    for item in spec:
        name, _, action = item.partition(":")
        resource = Resource(name)
        granted.add((resource, READ))
        if action == "*":
            granted.add((resource, WRITE))
    return frozenset(granted)


ALL = frozenset((r, a) for r in Resource for a in (READ, WRITE))

ROLES: dict[str, frozenset[Permission]] = {
    "ADMIN": ALL,
    "CLUSTER_MANAGER": _grant(
        "CLUSTER:*", "HOST:*", "TASK:*", "USER:READ", "PACKAGE:*", "OBPROXY:*", "CREDENTIAL:*"
    ),
    "CLUSTER_VIEWER": _grant(
        "CLUSTER:READ", "HOST:READ", "TASK:READ", "PACKAGE:READ", "OBPROXY:READ", "CREDENTIAL:READ"
    ),
    "OBPROXY_MANAGER": _grant(
        "OBPROXY:*", "PACKAGE:*", "CLUSTER:READ", "HOST:READ", "TASK:*", "CREDENTIAL:*"
    ),
    "OBPROXY_VIEWER": _grant(
        "OBPROXY:READ", "PACKAGE:READ", "CLUSTER:READ", "HOST:READ", "TASK:READ", "CREDENTIAL:READ"
    ),
    "HOST_MANAGER": _grant("HOST:*", "PACKAGE:*", "TASK:*", "CREDENTIAL:*"),
    "HOST_VIEWER": _grant("HOST:READ", "PACKAGE:READ", "TASK:READ", "CREDENTIAL:READ"),
    "PACKAGE_MANAGER": _grant("PACKAGE:*"),
    "PACKAGE_VIEWER": _grant("PACKAGE:READ"),
    "TASK_MANAGER": _grant("TASK:*"),
    "TASK_VIEWER": _grant("TASK:READ"),
    "USER_MANAGER": _grant("USER:*", "ROLE:READ"),
    "AUDITOR": _grant("AUDIT:READ"),
}


def permissions_of(role_names: list[str]) -> frozenset[Permission]:
    granted: frozenset[Permission] = frozenset()
    for name in role_names:
        granted |= ROLES.get(name, frozenset())
    return granted
