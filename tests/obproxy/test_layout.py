"""obproxy/layout.py: where a cluster's OBProxies live, which paths overlap, who they run as."""

from __future__ import annotations

import pytest

from obfleet.obproxy import layout


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("/home/admin/obproxy-4.2.3.0", "/home/admin/obproxy-4.2.3.0", True),
        ("/home/admin/obproxy-4.2.3.0", "/home/admin/obproxy-4.2.3.0/obproxy-4.2.3.0", True),
        ("/data/x/obproxy-1", "/data", True),
        ("/home/admin/obproxy-4.2.3.0", "/home/admin/obproxy-4.2.3.0.1", False),
        ("/home/a/obproxy-1", "/home/b/obproxy-1", False),
    ],
)
def test_overlapping_install_paths(first: str, second: str, overlap: bool) -> None:
    assert layout.overlaps(first, second) is overlap
    assert layout.overlaps(second, first) is overlap


@pytest.mark.parametrize(
    "path", ["/home/admin", "/opt/obproxy", "/data", "/usr/local/ob", "/var/lib/ob"]
)
def test_install_paths_obfleet_takes(path: str) -> None:
    assert layout.check_install_path(path) == path
    assert layout.home(path, "4.3.1.0") == f"{path}/obproxy-4.3.1.0"


@pytest.mark.parametrize("user", ["admin", "obproxy", "_svc", "ob-proxy1"])
def test_run_users_obfleet_takes(user: str) -> None:
    assert layout.check_run_user(user) == user


def test_a_home_that_lies_in_a_system_directory_is_never_made() -> None:
    with pytest.raises(layout.LayoutError, match="system directory"):
        layout.home("/usr/lib", "4.3.1.0")
