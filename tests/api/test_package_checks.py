"""What an uploaded RPM must be, checked from its header alone (no decompression): not a source
RPM, an OBProxy package that installs a bin/obproxy, a payload that does not expand past the
bound; and extraction (rpm.extract, run at an install's first use) stopping where the header
says the payload ends, whatever the payload really holds. Every package here is a real RPM
built by rpmbuild."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from obfleet.api.app import create_app
from obfleet.packages import rpm
from tests.api.test_packages import listed, stored_files, upload

pytestmark = pytest.mark.skipif(
    shutil.which("rpmbuild") is None, reason="rpmbuild is missing: run scripts/system-deps.sh"
)

SPEC = """\
%define debug_package %{{nil}}
%define __os_install_post %{{nil}}
%define _build_id_links none
%define _binary_payload {payload}
%define _source_payload {payload}
%define _rpmfilename %%{{NAME}}-%%{{VERSION}}-%%{{RELEASE}}.%%{{ARCH}}.rpm

Name: {name}
Version: 1.0
Release: 1.el7
Summary: obfleet test package (not OBProxy)
License: Apache-2.0
AutoReqProv: no

%description
A package built by the obfleet test suite to check how uploads are vetted. It is not OBProxy.

%install
mkdir -p %{{buildroot}}/home/admin/p/bin %{{buildroot}}/home/admin/p/lib
{install}

%files
%defattr(-,root,root,-)
/home/admin/p
"""
OBPROXY = "printf '#!/bin/sh\\n' > %{buildroot}/home/admin/p/bin/obproxy"
MIB = 1024**2


def zeros(mib: int) -> str:
    return f"truncate -s {mib}M %{{buildroot}}/home/admin/p/lib/zeros"


def build(
    out: Path, tag: str, *, name: str = "obproxy-ce", install: str = OBPROXY, **opts: str
) -> Path:
    """rpmbuild a package into out/<tag>/; source=True: the source RPM (-bs)."""
    top = out / tag
    spec = top / "SPECS" / "p.spec"
    spec.parent.mkdir(parents=True)
    payload = opts.get("payload", "w2.xzdio")
    spec.write_text(SPEC.format(name=name, payload=payload, install=install))
    cmd = ["rpmbuild", "-bs" if opts.get("source") else "-bb", "--nodeps", "--quiet"]
    cmd += ["--target", "x86_64", "--define", f"_topdir {top}", str(spec)]
    env = {**os.environ, "HOME": str(top)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    built = list((top / ("SRPMS" if opts.get("source") else "RPMS")).glob("*.rpm"))
    assert proc.returncode == 0 and len(built) == 1, proc.stderr
    return built[0]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("checked-rpms")


def set_declared_payload_size(path: Path, size: int) -> None:
    """Overwrite the signature header's payload size (tag 1007): a header that lies."""
    data = bytearray(path.read_bytes())
    count, store_size = struct.unpack_from("!II", data, 96 + 8)
    index, store = 96 + 16, 96 + 16 + 16 * count
    for i in range(count):
        tag, kind, offset, _n = struct.unpack_from("!IIiI", data, index + 16 * i)
        if tag == 1007:
            assert kind == 4 and offset + 4 <= store_size
            struct.pack_into("!I", data, store + offset, size)
            path.write_bytes(bytes(data))
            return
    raise AssertionError("no payload size in the signature header")


# --- package type ---------------------------------------------------------------------------


def test_source_rpm_refused_7513(client, out):
    srpm = build(out, "srpm", source=True)
    assert srpm.name == "obproxy-ce-1.0-1.el7.src.rpm"
    header = rpm.read_header(srpm)
    assert header.is_source and header.name == "obproxy-ce"
    r = upload(client, srpm)
    assert r.status_code == 400 and r.json()["error"]["code"] == 7513, r.text
    assert "source RPM" in r.json()["error"]["message"]
    assert listed(client) == [] and stored_files(client) == []


def test_obproxy_without_bin_obproxy_refused_7513(client, out):
    install = "printf 'x\\n' > %{buildroot}/home/admin/p/bin/obproxyd.sh"
    r = upload(client, build(out, "no-binary", install=install))
    assert r.status_code == 400 and r.json()["error"]["code"] == 7513, r.text
    assert "/bin/obproxy" in r.json()["error"]["message"]
    assert listed(client) == [] and stored_files(client) == []


def test_obproxy_with_bin_obproxy_directory_refused(client, out):
    install = "mkdir -p %{buildroot}/home/admin/p/bin/obproxy"
    r = upload(client, build(out, "binary-is-dir", install=install))
    assert r.status_code == 400 and r.json()["error"]["code"] == 7513, r.text


def test_obproxy_with_bin_obproxy_accepted(client, out):
    path = build(out, "minimal")
    assert rpm.read_header(path).has_file("/bin/obproxy")
    r = upload(client, path)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["type"] == "OBPROXY_INSTALL_PACKAGE"


# --- expanded size at upload -----------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb(out: Path) -> Path:
    """4 MiB of zeros: a few KiB compressed."""
    return build(out, "bomb", install=f"{OBPROXY}\n{zeros(4)}")


def test_payload_expanding_past_bound_refused_7506(settings, bomb):
    header = rpm.read_header(bomb)
    assert header.archive_size is not None and header.archive_size > 4 * MIB
    # 256 KiB upload limit: the file passes it, its payload is over 4 x 256 KiB.
    assert bomb.stat().st_size < 256 * 1024
    app = create_app(replace(settings, max_upload_bytes=256 * 1024), run_engine=False)
    with TestClient(app) as small:
        r = upload(small, bomb)
        assert r.status_code == 400 and r.json()["error"]["code"] == 7506, r.text
        message = r.json()["error"]["message"]
        assert str(header.archive_size) in message and str(1024 * 1024) in message
        assert listed(small) == [] and stored_files(small) == []


def test_payload_within_bound_accepted(settings, bomb):
    app = create_app(replace(settings, max_upload_bytes=2 * MIB), run_engine=False)
    with TestClient(app) as roomy:
        assert upload(roomy, bomb).status_code == 200


def test_lying_archive_size_caught_by_file_sizes(settings, bomb, tmp_path):
    liar = tmp_path / bomb.name
    shutil.copyfile(bomb, liar)
    set_declared_payload_size(liar, 1000)
    assert rpm.read_header(liar).archive_size == 1000
    app = create_app(replace(settings, max_upload_bytes=256 * 1024), run_engine=False)
    with TestClient(app) as small:
        r = upload(small, liar)
        assert r.status_code == 400 and r.json()["error"]["code"] == 7506, r.text


def test_expansion_limit():
    assert rpm.expansion_limit(2 * 1024**3) == rpm.MAX_EXPANDED_BYTES == 8 * 1024**3
    assert rpm.expansion_limit(1024) == 4096
    assert rpm.expansion_limit(100 * 1024**3) == rpm.MAX_EXPANDED_BYTES


# --- extraction ------------------------------------------------------------------------------

PAYLOADS = {"xz": "w2.xzdio", "gzip": "w9.gzdio", "bzip2": "w9.bzdio", "zstd": "w19.zstdio"}


@pytest.fixture(scope="module", params=sorted(PAYLOADS))
def compressed(request: pytest.FixtureRequest, out: Path) -> Path:
    path = build(
        out,
        f"payload-{request.param}",
        install=f"{OBPROXY}\n{zeros(4)}",
        payload=PAYLOADS[request.param],
    )
    assert rpm.read_header(path).compressor == request.param
    return path


def test_extract_each_compressor(compressed, tmp_path):
    files = {str(f.path): f.mode for f in rpm.extract(compressed, tmp_path)}
    assert files == {"/home/admin/p/bin/obproxy": 0o644, "/home/admin/p/lib/zeros": 0o644}
    assert (tmp_path / "home/admin/p/lib/zeros").read_bytes() == bytes(4 * MIB)
    assert (tmp_path / "home/admin/p/bin/obproxy").read_bytes() == b"#!/bin/sh\n"


def test_extract_stops_at_limit(compressed, tmp_path):
    with pytest.raises(rpm.RpmError, match="expands past 1048576 bytes"):
        list(rpm.extract(compressed, tmp_path, limit=MIB))
    zeros_file = tmp_path / "home/admin/p/lib/zeros"
    assert not zeros_file.exists() or zeros_file.stat().st_size <= MIB


def test_extract_stops_past_declared_size(bomb, tmp_path):
    """A header that declares a small payload (and so passed the upload check) does not get
    more expanded than it declared, plus the slack."""
    liar = tmp_path / bomb.name
    shutil.copyfile(bomb, liar)
    set_declared_payload_size(liar, 1000)
    with pytest.raises(rpm.RpmError, match=f"expands past {1000 + rpm.EXTRACT_SLACK} bytes"):
        list(rpm.extract(liar, tmp_path / "out"))
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written <= 1000 + rpm.EXTRACT_SLACK


def test_truncated_rpm(bomb, tmp_path):
    data = bomb.read_bytes()
    head_only = tmp_path / "head.rpm"
    head_only.write_bytes(data[:200])
    with pytest.raises(rpm.RpmError, match="truncated"):
        rpm.read_header(head_only)
    cut = tmp_path / "cut.rpm"
    cut.write_bytes(data[:-100])
    with pytest.raises(rpm.RpmError, match="payload"):
        list(rpm.extract(cut, tmp_path / "out"))
