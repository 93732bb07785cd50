"""`obfleet package ...` (OBProxy RPMs) and `obfleet ob ...` (OceanBase cluster records)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from obfleet.client.output import Format, emit, err
from obfleet.client.session import (
    OutputOpt,
    ProfileOpt,
    connect,
    credential_id,
    delete_named,
    fail,
    print_all,
    read_secret,
)

package_app = typer.Typer(help="Software packages (OBProxy RPMs) obfleet installs from.")
ob_app = typer.Typer(help="OceanBase clusters OBProxy clusters route to.")

PACKAGES = "/api/v2/software-packages"
OB_CLUSTERS = "/api/v2/ob/clusters"


@package_app.command("upload")
def package_upload(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="An RPM.")
    ],
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Upload an OBProxy RPM, with a progress bar (on stderr).

    Example: obfleet package upload obproxy-ce-4.2.3.0-3.el7.x86_64.rpm
    """
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with (
        connect(profile) as api,
        Progress("{task.description}", *columns, console=err, transient=True) as progress,
    ):
        bar = progress.add_task(file.name, total=file.stat().st_size)
        package = api.upload(PACKAGES, file, lambda n: progress.advance(bar, n))
    emit(package, output, ("id", "name", "version", "buildNumber", "fileName", "size"))


@package_app.command("list")
def package_list(profile: ProfileOpt = None, output: OutputOpt = Format.table) -> None:
    """List uploaded packages.

    Example: obfleet package list -o yaml
    """
    columns = ("id", "fileName", "version", "buildNumber", "architecture", "deletable")
    print_all(profile, output, PACKAGES, columns)


@package_app.command("delete")
def package_delete(
    package: Annotated[str, typer.Argument(help="Package file name or id.")],
    profile: ProfileOpt = None,
) -> None:
    """Delete a package no obproxy runs.

    Example: obfleet package delete obproxy-ce-4.2.2.0-1.el7.x86_64.rpm
    """
    delete_named(profile, PACKAGES, "fileName", package, "package")


def root_server(text: str) -> dict[str, object]:
    """ip:rpcPort:sqlPort[:LEADER|FOLLOWER] as the import body's rootServers item."""
    parts = text.split(":")
    if len(parts) not in (3, 4) or not (parts[1].isdigit() and parts[2].isdigit()):
        fail(f"'{text}' is not ip:rpcPort:sqlPort[:LEADER|FOLLOWER]", 2)
    role = parts[3].upper() if len(parts) == 4 else "FOLLOWER"
    return {"address": f"{parts[0]}:{parts[1]}", "sqlPort": int(parts[2]), "role": role}


@ob_app.command("import")
def ob_import(
    name: Annotated[str, typer.Argument(help="The OceanBase cluster's name.")],
    ob_cluster_id: Annotated[int, typer.Option(help="Its cluster id.")],
    root_server_list: Annotated[
        list[str],
        typer.Option("--root-server", help="ip:rpcPort:sqlPort[:LEADER] (repeatable)."),
    ],
    proxyro_credential: Annotated[
        str | None, typer.Option(help="OB_CLUSTER credential holding proxyro's password.")
    ] = None,
    proxyro_password_file: Annotated[
        Path | None, typer.Option(help="proxyro's password, from a file.")
    ] = None,
    proxyro_password_stdin: Annotated[
        bool, typer.Option(help="proxyro's password, from stdin.")
    ] = False,
    ob_version: Annotated[str | None, typer.Option(help="e.g. 4.2.1.0")] = None,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Record an existing OceanBase cluster (proxyro's password asked unless given otherwise).

    Example: obfleet ob import ob1 --ob-cluster-id 1 --root-server 10.0.1.1:2882:2881:LEADER
    """
    body: dict[str, object] = {
        "name": name,
        "obClusterId": ob_cluster_id,
        "rootServers": [root_server(r) for r in root_server_list],
    }
    if ob_version:
        body["obVersion"] = ob_version
    with connect(profile) as api:
        if proxyro_credential:
            body["proxyroCredentialId"] = credential_id(api, proxyro_credential)
        else:
            body["proxyroPassword"] = read_secret(
                "proxyro password", proxyro_password_file, proxyro_password_stdin
            )
        emit(api.post(f"{OB_CLUSTERS}/import", body), output, ("id", "name", "obClusterId"))


@ob_app.command("list")
def ob_list(profile: ProfileOpt = None, output: OutputOpt = Format.table) -> None:
    """List recorded OceanBase clusters.

    Example: obfleet ob list
    """
    columns = ("id", "name", "obClusterId", "obVersion", "type", "status", "rootServers")
    print_all(profile, output, OB_CLUSTERS, columns)
