"""pytest fixtures for real test hosts (see testhosts.py).

Register once in tests/conftest.py:  pytest_plugins = ["tests.support.hostfixtures"]

* `host_lab_factory` (session): `make(n_hosts=3, **kw) -> HostLab`; every lab made is torn down
  at the end of the session (or earlier by `lab.close()`).
* `host_lab` (module): one started lab of 3 hosts shared by a module's tests.
* `test_hosts` (function): the hosts of `host_lab`, healed before each test (links up, sshd
  running with its original key, ports and disk freed), so one test's faults never leak into the
  next. Files and processes on the hosts are kept; call `host.reset()` to wipe them.

Without root or without sshd the fixtures skip with the reason; anything else that is missing is
a failure, so CI (root, sshd installed) really runs these tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .testhosts import HostLab, NetnsHost, lab_unavailable_reason

__all__ = ["host_lab", "host_lab_factory", "test_hosts"]


@pytest.fixture(scope="session")
def host_lab_factory() -> Iterator[Callable[..., HostLab]]:
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    labs: list[HostLab] = []

    def make(n_hosts: int = 3, **kwargs: str) -> HostLab:
        lab = HostLab(n_hosts, **kwargs)
        labs.append(lab)
        return lab.start()

    yield make
    errors = []
    for lab in reversed(labs):
        try:
            lab.close()
        except Exception as exc:  # keep closing the others
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def host_lab(host_lab_factory: Callable[..., HostLab]) -> Iterator[HostLab]:
    lab = host_lab_factory(3)
    yield lab
    lab.close()


@pytest.fixture
def test_hosts(host_lab: HostLab) -> list[NetnsHost]:
    host_lab.heal()
    return host_lab.hosts
