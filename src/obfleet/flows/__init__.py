"""Task definitions: the host task (prepare_host) and OCP's OBProxy tasks (obproxy/).

Subtasks are stored by their classes' qualified names. The OBProxy steps lived in one module
per task directly under flows/ until they moved into flows/obproxy/; the names below map each
old name to its class now, so tasks recorded before the move still run, retry and roll back.
"""

from obfleet.engine.definition import moved

_MOVED_MODULES = {
    "install_obproxy": "install",
    "offline_obproxy": "offline",
    "restart_obproxy": "restart",
    "takeover_obproxy": "takeover",
    "update_parameters": "parameters",
    "upgrade_obproxy": "upgrade",
}
_MOVED_CLASSES = {
    "install_obproxy": "PrepareCreateObproxy CheckProcessNotExist InstallPackage StartObproxy "
    "WaitObproxyLogin SetProxyroPassword SyncObproxyParameter UpdateObproxyStatus",
    "offline_obproxy": "PrepareOfflineObproxy WaitNode StopAndUninstallObproxy "
    "DeleteObproxyInfo OfflineObproxyExporter UnreserveHost",
    "restart_obproxy": "PrepareRestart StopObproxy StartObproxy WaitObproxyLogin "
    "SetProxyroPassword SyncObproxyParameter UpdateObproxyStatus FinishRestart",
    "takeover_obproxy": "CheckObproxyToTakeOver PrepareTakeOverObproxy SetObproxyRootPassword "
    "SyncTakenOverParameters UpdateTakenOverStatus",
    "update_parameters": "PrepareUpdateParameter UpdateObproxyParameter FinishUpdateParameter",
    "upgrade_obproxy": "PrepareUpgrade CheckUpgradePath InstallNewPackage StopOldObproxy "
    "CopyObproxyConfig StartNewObproxy WaitNewLogin SetNewProxyroPassword SyncNewParameters "
    "UpdateUpgradedStatus RemoveOldInstall FinishUpgrade",
}
moved(
    {
        f"obfleet.flows.{old}.{name}": f"obfleet.flows.obproxy.{_MOVED_MODULES[old]}.{name}"
        for old, names in _MOVED_CLASSES.items()
        for name in names.split()
    }
    | {
        f"obfleet.flows.obproxy_cluster.{name}": f"obfleet.flows.obproxy.{new}.{name}"
        for name, new in (
            ("PrepareObproxyInstall", "install"),
            ("FinishInstall", "install"),
            ("StartOffline", "offline"),
            ("FinishOffline", "offline"),
        )
    }
)
