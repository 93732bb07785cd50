"""Pack the OBProxy stand-in (tests/standin/obproxy.py) into a real binary RPM.

The payload has the layout of the real obproxy-ce RPM, so obfleet's package handling (header
parsing, payload extraction, "ship bin/ and lib/") runs on it unchanged:

    /home/admin/obproxy-<version>/bin/obproxy        the stand-in, mode 0755, version baked in
    /home/admin/obproxy-<version>/bin/obproxyd.sh    a tiny keep-alive script
    /home/admin/obproxy-<version>/lib/libstandin.so.txt

The package is a test stand-in, not OBProxy; its Summary and description say so.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

STANDIN = Path(__file__).with_name("obproxy.py")

OBPROXYD_SH = """\
#!/bin/bash
# Test stand-in for OBProxy's obproxyd.sh: restart bin/obproxy from its persisted config when it
# is gone. Usage: obproxyd.sh [home] [ip] [port]
home=${1:-$(cd "$(dirname "$0")/.." && pwd)}
port=${3:-}
while true; do
  pid=$(cat "$home/run/obproxy.pid" 2>/dev/null)
  if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then
    cd "$home" && "$home/bin/obproxy" ${port:+--listen_port "$port"}
  fi
  sleep 1
done
"""

LIB_NOTE = "Placeholder shared library of the OBProxy test stand-in; it is shipped, never loaded.\n"

SPEC = """\
%define debug_package %{{nil}}
%define __os_install_post %{{nil}}
%define _build_id_links none
%define _binary_payload w2.xzdio
%define _rpmfilename %%{{NAME}}-%%{{VERSION}}-%%{{RELEASE}}.%%{{ARCH}}.rpm

Name: {name}
Version: {version}
Release: {release}
Summary: Test stand-in for OBProxy (not OBProxy)
License: Apache-2.0
Group: Applications/Databases
URL: https://github.com/oceanbase/obproxy
AutoReqProv: no

%description
Test stand-in for OBProxy, built by the obfleet test suite. It is not OBProxy: it is a small
Python program with OBProxy's command line, admin SQL on the SQL port and /metrics exporter.

%install
mkdir -p %{{buildroot}}/home/admin
cp -a {stage} %{{buildroot}}/home/admin/obproxy-%{{version}}

%files
%defattr(-,root,root,-)
/home/admin/obproxy-%{{version}}
"""

# RPM forbids '-' in Version and Release; keep every field to characters rpm accepts unquoted.
_FIELD = {
    "name": re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*"),
    "version": re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~^]*"),
    "release": re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~^]*"),
    "arch": re.compile(r"[A-Za-z0-9_]+"),
}


def build_standin_rpm(
    out_dir: Path,
    *,
    name: str = "obproxy-ce",
    version: str = "4.2.3.0",
    release: str = "3.el7",
    arch: str = "x86_64",
) -> Path:
    """Build `<name>-<version>-<release>.<arch>.rpm` in out_dir and return its path.

    A file built earlier from the same arguments and the same stand-in source is reused.
    """
    fields = {"name": name, "version": version, "release": release, "arch": arch}
    for field, value in fields.items():
        if not _FIELD[field].fullmatch(value):
            raise ValueError(f"invalid RPM {field} {value!r}")
    rpmbuild = shutil.which("rpmbuild")
    if rpmbuild is None:
        raise RuntimeError("rpmbuild is not installed (apt-get install rpm)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}-{version}-{release}.{arch}.rpm"
    stamp = out_dir / f".{target.name}.inputs"
    fingerprint = _fingerprint(fields)
    if target.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return target
    with tempfile.TemporaryDirectory(prefix="standin-rpm-") as tmp:
        built = _rpmbuild(rpmbuild, Path(tmp), fields)
        # Copy then rename, so a concurrent reader never sees half a file.
        partial = out_dir / f".{target.name}.{os.getpid()}.partial"
        shutil.copyfile(built, partial)
        os.replace(partial, target)
    stamp.write_text(fingerprint)
    return target


def baked_standin(version: str, release: str) -> str:
    """The stand-in source with its version placeholders replaced."""
    source = STANDIN.read_text(encoding="utf-8")
    for placeholder, value in (("@STANDIN_VERSION@", version), ("@STANDIN_RELEASE@", release)):
        if source.count(f'"{placeholder}"') != 1:
            raise RuntimeError(f"placeholder {placeholder} not found once in {STANDIN}")
        source = source.replace(f'"{placeholder}"', f'"{value}"')
    return source


def _fingerprint(fields: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for part in (STANDIN.read_bytes(), Path(__file__).read_bytes(), repr(sorted(fields.items()))):
        digest.update(part if isinstance(part, bytes) else part.encode())
    return digest.hexdigest()


def _stage(stage: Path, version: str, release: str) -> None:
    (stage / "bin").mkdir(parents=True)
    (stage / "lib").mkdir()
    obproxy = stage / "bin" / "obproxy"
    obproxy.write_text(baked_standin(version, release), encoding="utf-8")
    obproxy.chmod(0o755)
    obproxyd = stage / "bin" / "obproxyd.sh"
    obproxyd.write_text(OBPROXYD_SH, encoding="utf-8")
    obproxyd.chmod(0o755)
    (stage / "lib" / "libstandin.so.txt").write_text(LIB_NOTE, encoding="utf-8")


def _rpmbuild(rpmbuild: str, top: Path, fields: dict[str, str]) -> Path:
    stage = top / "stage"
    _stage(stage, fields["version"], fields["release"])
    spec = top / "SPECS" / "obproxy-standin.spec"
    spec.parent.mkdir()
    spec.write_text(SPEC.format(stage=stage, **fields), encoding="utf-8")
    cmd = [
        rpmbuild,
        "-bb",
        "--nodeps",
        "--quiet",
        "--target",
        fields["arch"],
        "--define",
        f"_topdir {top}",
        "--define",
        f"_tmppath {top / 'tmp'}",
        str(spec),
    ]
    # HOME points into the topdir so a developer's ~/.rpmmacros cannot change the result.
    env = {**os.environ, "HOME": str(top)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    name = "{name}-{version}-{release}.{arch}.rpm".format(**fields)
    built = top / "RPMS" / name
    if proc.returncode != 0 or not built.exists():
        raise RuntimeError(
            f"rpmbuild failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
        )
    return built
