"""The root@proxysys password of an OBProxy cluster: the rule it follows, and changing it with
the "Change obproxy password" task (flows/obproxy/password.py).

The rule is OCP's password rule (error 3009, security/passwords.py): 8 to 32 characters, at
least two each of digits, upper-case letters, lower-case letters and the specials `._+@#$%`,
nothing else. OCP applies it to the passwords it sets, and it keeps out what OBProxy's own
parsers treat specially: quotes and backslashes (`alter proxyconfig set` values), commas and
blanks (the `-o` option string), so the same password works on every path into OBProxy.

`POST /api/v2/obproxy/clusters/{id}/changePassword` (an extension: OCP's console has "change
the password" for a cluster, its API documents none) with `{"password": ...}`. Refused with
nothing stored: a password against the rule (3009), an obproxy not RUNNING/UNAVAILABLE (21003;
a failed change holds its obproxies until it is retried or rolled back).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from obfleet.errors import ApiError, ErrorCode
from obfleet.flows.obproxy import password as password_flow
from obfleet.records import credentials
from obfleet.records import obproxy as records
from obfleet.security.passwords import policy_problems
from obfleet.security.secrets import SecretBox
from obfleet.services.obproxy_operations import submit_on
from obfleet.services.users import Principal


def check_proxysys_password(password: str, field: str) -> None:
    """3009 unless `password` follows the rule above; the message names the field."""
    problems = policy_problems(password)
    if problems:
        raise ApiError(ErrorCode.PASSWORD_INVALID, f"{field}: {'; '.join(problems)}")


def change_password(
    session: Session, box: SecretBox, cluster_id: int, password: str, principal: Principal
) -> int:
    """Keep the new password in a spare credential, mark the cluster's obproxies and submit
    "Change obproxy password"; returns the task id."""
    cluster = records.get(session, cluster_id)
    check_proxysys_password(password, "password")
    rows = records.obproxies_of(session, cluster_id, [row.id for row in cluster.obproxies])
    spare = credentials.create(
        session,
        box,
        name=f"proxysys_{cluster.name}_next",
        target_type="OBPROXY",
        auth_type="PASSWORD",
        username="root@proxysys",
        secret=password,
        description=f"spare root@proxysys password of OBProxy cluster {cluster.name} while "
        "its password changes",
    )
    flow = password_flow.build(cluster, rows, spare.id)
    return submit_on(session, flow, cluster_id, rows, password_flow.MARK, principal)
