"""The uploaded OBProxy packages, and the one an install gets when none is named: the newest.

The server needs the package's file name for every install (create, batchAdd); "the newest" is
the client's default, chosen here, so `apply`, `cluster create` and `obproxy add` agree on it.
"""

from __future__ import annotations

from typing import Any

from obfleet.client.api import Api

PACKAGES = "/api/v2/software-packages"
OBPROXY = "OBPROXY_INSTALL_PACKAGE"  # the type the server gives OBProxy RPMs


class NoPackage(Exception):
    """No uploaded package can be the default."""


def obproxy_packages(api: Api) -> list[dict[str, Any]]:
    return api.every(PACKAGES, type=OBPROXY)


def _number(text: str) -> int:
    return int(text) if text.isdigit() else -1


def _age(package: dict[str, Any]) -> tuple[tuple[int, ...], int]:
    """Newer packages sort higher: version, then the build number's leading number
    (3 of "3.el7"), as the server orders them for an upgrade."""
    version = tuple(_number(part) for part in str(package["version"]).split("."))
    return version, _number(str(package["buildNumber"]).split(".")[0])


def newest(packages: list[dict[str, Any]], architectures: set[str]) -> dict[str, Any]:
    """The newest of `packages`; builds of that version for several architectures (el7/el8,
    x86_64/aarch64) are told apart by the hosts' `architectures`."""
    if not packages:
        raise NoPackage(
            "no OBProxy package is uploaded: upload one (obfleet package upload RPM) "
            "or name the version to install"
        )
    top = max(_age(p) for p in packages)
    matches = [p for p in packages if _age(p) == top]
    if len(matches) > 1:
        matches = [p for p in matches if p["architecture"] in architectures] or matches
    if len(matches) > 1:
        files = ", ".join(sorted(p["fileName"] for p in matches))
        raise NoPackage(f"the newest version is in several packages ({files}): name one")
    return matches[0]
