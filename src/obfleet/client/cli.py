"""The client's commands, added to the `obfleet` command in one place."""

from __future__ import annotations

import typer

from obfleet.client.commands.apply import apply, diff, import_obd
from obfleet.client.commands.clusters import cluster_app, obproxy_app
from obfleet.client.commands.hosts import credential_app, host_app
from obfleet.client.commands.login import login, logout
from obfleet.client.commands.packages import ob_app, package_app
from obfleet.client.commands.tasks import task_app

SUB_APPS = {
    "cluster": cluster_app,
    "obproxy": obproxy_app,
    "host": host_app,
    "credential": credential_app,
    "package": package_app,
    "ob": ob_app,
    "task": task_app,
}


def add_client_commands(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(apply)
    app.command()(diff)
    app.command("import-obd")(import_obd)
    for name, sub_app in SUB_APPS.items():
        sub_app.info.no_args_is_help = True
        app.add_typer(sub_app, name=name)
