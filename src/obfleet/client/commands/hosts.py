"""`obfleet host ...` and `obfleet credential ...` (the password box; secrets never on argv)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from obfleet.client.output import Format, emit
from obfleet.client.session import (
    OutputOpt,
    ProfileOpt,
    WaitOpt,
    connect,
    credential_id,
    delete_named,
    host_ids,
    print_all,
    read_secret,
    refuse_argv_secret,
    started,
)

host_app = typer.Typer(help="Hosts obfleet deploys on (reached over SSH with a credential).")
credential_app = typer.Typer(help="Credentials: SSH logins, OceanBase and OBProxy passwords.")

HOSTS = "/api/v2/compute/hosts"
CREDENTIALS = "/api/v2/credentials"
HOST_COLUMNS = ("id", "innerIpAddress", "sshPort", "status", "kind", "credentialId", "services")


@host_app.command("add")
def host_add(
    addresses: Annotated[list[str], typer.Argument(help="Host addresses.")],
    credential: Annotated[str, typer.Option(help="HOST credential name or id to log in with.")],
    ssh_port: Annotated[int, typer.Option(help="SSH port.")] = 22,
    kind: Annotated[str, typer.Option(help="OCP host kind.")] = "DEDICATED_PHYSICAL_MACHINE",
    wait: WaitOpt = False,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Add hosts: each gets a "Prepare host" task that pins its SSH host key.

    Example: obfleet host add 10.0.0.1 10.0.0.2 --credential root_key --wait
    """
    with connect(profile) as api:
        body = {
            "hostBasicDataList": [{"innerIpAddress": address} for address in addresses],
            "sshPort": ssh_port,
            "kind": kind,
            "credentialId": credential_id(api, credential),
        }
        started(api, api.post(f"{HOSTS}/batchCreate", body)["contents"], wait, output)


@host_app.command("list")
def host_list(profile: ProfileOpt = None, output: OutputOpt = Format.table) -> None:
    """List hosts.

    Example: obfleet host list -o json
    """
    print_all(profile, output, HOSTS, HOST_COLUMNS)


@host_app.command("show")
def host_show(
    host: Annotated[str, typer.Argument(help="Host address or id.")],
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Show one host.

    Example: obfleet host show 10.0.0.1
    """
    with connect(profile) as api:
        (host_id,) = host_ids(api, [host])
        emit(api.get(f"{HOSTS}/{host_id}"), output)


@host_app.command("delete")
def host_delete(
    hosts: Annotated[list[str], typer.Argument(help="Host addresses or ids.")],
    profile: ProfileOpt = None,
) -> None:
    """Delete hosts nothing runs on.

    Example: obfleet host delete 10.0.0.1
    """
    with connect(profile) as api:
        api.post(f"{HOSTS}/batchDelete", {"hostIdList": host_ids(api, hosts)})
    typer.echo(f"deleted {', '.join(hosts)}", err=True)


@credential_app.command("add")
def credential_add(
    name: Annotated[str, typer.Argument(help="Credential name.")],
    target_type: Annotated[str, typer.Option("--type", help="HOST, OB_CLUSTER or OBPROXY.")],
    username: Annotated[str, typer.Option(help="User the secret belongs to.")],
    private_key_file: Annotated[
        Path | None, typer.Option(help="An SSH private key file (auth type PRIVATE_KEY).")
    ] = None,
    secret_file: Annotated[Path | None, typer.Option(help="Read the password from a file.")] = None,
    secret_stdin: Annotated[
        bool, typer.Option(help="Read the password (or key passphrase) from stdin.")
    ] = False,
    passphrase_file: Annotated[
        Path | None, typer.Option(help="The private key's passphrase, from a file.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Free text.")] = None,
    password: Annotated[str | None, typer.Option(hidden=True)] = None,
    private_key: Annotated[str | None, typer.Option(hidden=True)] = None,
    passphrase: Annotated[str | None, typer.Option(hidden=True)] = None,
    profile: ProfileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Store a secret in obfleet's password box (from a prompt, a file or stdin; never argv).

    Example: obfleet credential add root_key --type HOST --username root
    --private-key-file ~/.ssh/id_ed25519

    Example: echo "$PW" | obfleet credential add proxyro --type OB_CLUSTER
    --username proxyro --secret-stdin
    """
    refuse_argv_secret(password, "a password", "use the prompt, --secret-file or --secret-stdin")
    refuse_argv_secret(private_key, "a private key", "use --private-key-file")
    refuse_argv_secret(passphrase, "a passphrase", "use --passphrase-file")
    body: dict[str, object] = {"name": name, "targetType": target_type, "username": username}
    if private_key_file is not None:
        body |= {"authType": "PRIVATE_KEY", "privateKey": private_key_file.read_text()}
        if passphrase_file is not None or secret_stdin:
            body["passphrase"] = read_secret("Passphrase", passphrase_file, secret_stdin)
    else:
        secret = read_secret("Password", secret_file, secret_stdin, confirm=True)
        body |= {"authType": "PASSWORD", "password": secret}
    if description:
        body["description"] = description
    with connect(profile) as api:
        created = api.post(CREDENTIALS, body)
    emit(created, output, ("id", "name", "targetType", "authType", "username"))


@credential_app.command("list")
def credential_list(profile: ProfileOpt = None, output: OutputOpt = Format.table) -> None:
    """List credentials (their secrets are never shown).

    Example: obfleet credential list
    """
    columns = ("id", "name", "targetType", "authType", "username", "description")
    print_all(profile, output, CREDENTIALS, columns)


@credential_app.command("delete")
def credential_delete(
    credential: Annotated[str, typer.Argument(help="Credential name or id.")],
    profile: ProfileOpt = None,
) -> None:
    """Delete a credential nothing uses.

    Example: obfleet credential delete old_key
    """
    delete_named(profile, CREDENTIALS, "name", credential, "credential")
