"""The names OBProxy tasks share with their readers: task names and task-context keys, each
once. Where OCP's samples show a key (ocp-api-notes.md §7) it has OCP's name.

stringMap unless noted; listMap lists are aligned, one element per obproxy (or host) of the
task, in the request's order, and parallel branch i works on element i.
"""

from __future__ import annotations

# --- task names ---------------------------------------------------------------------------------
INSTALL = "Install obproxy"
OFFLINE = "Offline obproxy"
RESTART = "Restart obproxy"
UPGRADE = "Upgrade obproxy"
TAKE_OVER = "Take over obproxy"
UPDATE_PARAMETERS = "Update obproxy parameter"
CHANGE_PASSWORD = "Change obproxy password"

# --- every OBProxy task -------------------------------------------------------------------------
CLUSTER_ID = "obproxy_cluster_id"
CLUSTER_NAME = "obproxy_cluster_name"
NEED_DELETE_CLUSTER = "obproxy_need_delete_cluster"  # "true": the Finish node forgets the cluster
SERVICE_TYPE = "service_type"
SERVICE_NAME = "service_name"
PROHIBIT_ROLLBACK = "prohibit_rollback"

# --- one OBProxy to install or take over -------------------------------------------------------
HOST_IDS = "host_ids"  # listMap: a cluster create's hosts (one branch each); the others' hosts
HOST_ID = "host_id"  # the one host of a batchAdd or take-over task
SQL_PORT = "sql_port"
EXPORTER_PORT = "exporter_port"
PACKAGE_ID = "package_id"
PACKAGE_NAME = "package_name"
PACKAGE_VERSION = "package_version"  # <version>-<buildNumber>, as OBProxy versions are shown
INSTALL_PATH = "install_path"
# The row the task created, kept in the transaction that inserts it (engine/kept.py); a create's
# branch i keeps it under obproxy_server_id_<i>: see server_id_key.
SERVER_ID = "obproxy_server_id"

# --- operations on recorded obproxies ----------------------------------------------------------
SERVER_IDS = "obproxy_server_ids"  # listMap: the obproxies
PREVIOUS_STATUSES = "obproxy_previous_statuses"  # listMap: each one's status before the task
OPERATION_STATUS = "obproxy_operation_status"  # what the task marked them (RESTARTING, ...)
PARAMETERS_BEFORE = "obproxy_parameters_before"  # a parameter change: JSON of ParameterLists
PARAMETERS_AFTER = "obproxy_parameters_after"
# listMap: runtime parameters a change resets that obfleet had not set (not in either list)
PARAMETERS_RESET = "obproxy_parameters_reset"
PARAMETER_VERSION = "obproxy_parameter_version"  # the cluster's (new) parameter version
OLD_PARAMETER_VERSION = "obproxy_previous_parameter_version"
PREVIOUS_PARAMETER_VERSIONS = "obproxy_previous_parameter_versions"  # listMap, per obproxy

# --- offline: what Prepare found, per obproxy: obproxy_<id>_<what> (see per_obproxy) ---------
IP = "ip"
WAS_RUNNING = "was_running"  # "true": a process ran from the install path when prepared
UNINSTALL = "uninstall"  # "true": the install path and what runs there are this obproxy's

# --- upgrade -------------------------------------------------------------------------------------
OLD_INSTALL_PATHS = "old_install_paths"  # listMap
OLD_VERSIONS = "old_versions"  # listMap
OLD_PACKAGE_IDS = "old_package_ids"  # listMap
NEW_PATH_ENTRIES = "new_install_path_entries"  # _<i>: what the new path held before

# --- change password ---------------------------------------------------------------------------
# The spare credential: the new password until the cluster's credential takes it, then the old
# one (for a rollback) until the task ends.
SPARE_PROXYSYS_CREDENTIAL_ID = "spare_proxysys_credential_id"
PROXYSYS_SWITCHED = "proxysys_credential_switched"  # kept "true" once the cluster's has the new

# --- take-over -----------------------------------------------------------------------------------
PROXYSYS_CREDENTIAL_ID = "proxysys_credential_id"  # request (extension): its current password
OBPROXY_PID = "obproxy_pid"
PROXYSYS_SOURCE = "proxysys_password_source"  # cluster | credential | empty: what logged in
PREVIOUS_PARAMETERS = "previous_parameters"  # listMap: name=value as Check found, for rollback


def per_branch(key: str, parallel_idx: int) -> str:
    """A key one parallel branch of a task writes for itself (branches share no keys)."""
    return f"{key}_{parallel_idx}"


def per_obproxy(obproxy_id: int | str, what: str) -> str:
    """A key about one obproxy of an offline task."""
    return f"obproxy_{obproxy_id}_{what}"
