"""The console in a real browser, against a real `obfleet serve` and real test hosts, as an
operator uses it: log in, upload the package, store a key, add hosts (and prepare one again),
import an OB cluster and give it a new proxyro credential from the wizard, create an RS_LIST
cluster through the wizard and watch its task graph turn green (each host's column headed by
its address), read a subtask's log, see the ports its obproxies take marked in the wizard (and
refused by the API), restart an obproxy, change a parameter, add an obproxy on a host whose
port is taken (the red subtask, its log, retry from the page), take over an obproxy started by
hand, link a second OB cluster to a CONFIG_URL cluster and unlink it, delete the cluster, log
out (the cookie from before, replayed, opens no page); and a read-only user, who sees no write
button and whose writes the API refuses anyway.

The tests run in order and build on each other (one server, one lab); each saves a screenshot
of the page it checks into ./screenshots/ (git-ignored).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from obfleet.api.sessions import COOKIE
from obfleet.obproxy.layout import DEFAULT_RUN_USER
from obfleet.security.secrets import SecretBox, load_or_create_key
from obfleet.services.users import create_user
from obfleet.store.db import Database
from tests.conftest import ADMIN_PASSWORD
from tests.deploy.conftest import (
    EXPORTER_PORT,
    HOME,
    OB_CLUSTER,
    PROXYRO_PASSWORD,
    RELEASE,
    ROOT_SERVER,
    RPM_NAME,
    SQL_PORT,
    Fleet,
    fleet_server,
    standin_rpm,  # noqa: F401 - the fixture
)
from tests.deploy.test_parameters import alter_by_hand
from tests.deploy.test_takeover import (
    payload,  # noqa: F401 - the fixture
    start_by_hand,
)
from tests.server import SECRET_KEY, ServerProcess
from tests.standin.rpm import build_standin_rpm
from tests.support.browser import OfflineBrowser
from tests.support.testhosts import HostLab, NetnsHost

pytestmark = [pytest.mark.browser, pytest.mark.hosts]

CLUSTER = "web1"
NEWER = "4.2.3.1"  # the version the obproxies are upgraded to
VIEWER, VIEWER_PASSWORD = "viewer1", "Viewer_Pass_12"
# A second OceanBase cluster, and the CONFIG_URL cluster that links and unlinks it.
SECOND_OB, SECOND_OB_ROOT, LINKING = "ob2", "198.18.250.2:2882:2881", "web3"
# A task's end as the page shows it; installs over SSH on a busy machine take a while.
DONE = re.compile(r"^(SUCCESSFUL|FAILED)$")
TASK_TIMEOUT_MS = 180_000


@dataclass
class Console:
    server: ServerProcess
    lab: HostLab
    browser: OfflineBrowser
    page: Page  # the admin's

    def url(self, path: str) -> str:
        return f"{self.server.url}/console{path}"


@pytest.fixture(scope="module")
def lab(host_lab_factory: Callable[..., HostLab]) -> Iterator[HostLab]:
    lab = host_lab_factory(3)
    yield lab
    lab.close()


@pytest.fixture(scope="module")
def console(
    lab: HostLab, chromium: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    for host in lab.hosts:
        host.reset()
    server = fleet_server(lab, tmp_path_factory.mktemp("console") / "data")
    browser = OfflineBrowser(chromium)
    with server:
        page = browser.page(lab.gateway_ip)
        yield Console(server, lab, browser, page)
        browser.close()
    for host in lab.hosts:
        host.reset()  # the stand-ins daemonized: stop them with the module


def confirm(page: Page) -> None:
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    dialog.locator("button[value=ok]").click()


def on_task_page(page: Page) -> None:
    """The page went to the task the request started (else: the API's refusal it shows)."""
    try:
        expect(page).to_have_url(re.compile(r"/console/tasks/\d+$"))
    except AssertionError:
        pytest.fail(f"no task page; the page says: {page.locator('#flash').inner_text()}")


def task_end(page: Page) -> str:
    """The task page's status once the task ended, as the live page shows it."""
    status = page.locator("#task-status")
    expect(status).to_have_text(DONE, timeout=TASK_TIMEOUT_MS)
    return status.inner_text()


def node(page: Page, name: str, index: int = 0) -> str:
    """A subtask's status in the graph."""
    return page.locator(f"g.node[data-name='{name}']").nth(index).get_attribute("data-status") or ""


def test_login_refuses_a_wrong_password_with_the_apis_message(console: Console) -> None:
    page = console.page
    page.goto(console.server.url + "/")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".flash.error")).to_contain_text("invalid")
    console.browser.shot(page, "01-login-refused")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/console/clusters$"))
    cookie = next(c for c in page.context.cookies() if c["name"] == "obfleet_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"


def test_upload_the_package_with_a_progress_bar(
    console: Console,
    standin_rpm: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    page = console.page
    page.goto(console.url("/packages"))
    not_an_rpm = tmp_path / "obproxy-ce-9.9.9.9-1.el7.x86_64.rpm"
    not_an_rpm.write_text("not an rpm")
    page.set_input_files("#upload input[type=file]", str(not_an_rpm))
    page.click("#upload button[type=submit]")
    expect(page.locator("#flash")).to_be_visible()  # the API's refusal, as it words it
    console.browser.shot(page, "02-package-refused")
    assert "9.9.9.9" not in page.locator("#packages").inner_text()
    page.set_input_files("#upload input[type=file]", str(standin_rpm))
    page.click("#upload button[type=submit]")
    expect(page.locator("#packages")).to_contain_text(RPM_NAME)
    assert page.locator("#upload progress").get_attribute("value") is not None
    console.browser.shot(page, "02-packages")


def test_store_a_host_key_and_never_see_it_again(console: Console) -> None:
    page = console.page
    page.goto(console.url("/credentials"))
    form = page.locator("#add-credential")
    form.locator("[name=name]").fill("root_key")
    form.locator("[name=authType]").select_option("PRIVATE_KEY")
    form.locator("[name=username]").fill("root")
    form.locator("[name=secret]").fill(console.lab.root_private_key)
    form.locator("button[type=submit]").click()
    confirm(page)
    expect(page.locator("#credentials")).to_contain_text("root_key")
    assert "PRIVATE KEY" not in page.content()
    console.browser.shot(page, "03-credentials")


def test_add_hosts_by_batch_and_see_them_online(console: Console) -> None:
    page = console.page
    page.goto(console.url("/hosts"))
    form = page.locator("#add-hosts")
    form.locator("[name=hostBasicDataList]").fill("\n".join(h.ip for h in console.lab.hosts))
    form.locator("button[type=submit]").click()
    confirm(page)
    expect(page).to_have_url(re.compile(r"/console/tasks$"))  # one Prepare host task a host
    expect(page.locator("#tasks")).to_contain_text("Prepare host")
    console.browser.shot(page, "04-tasks")
    for host in console.lab.hosts:
        page.goto(console.url("/hosts"))
        row = page.locator("#hosts tr", has_text=host.ip)
        for _ in range(120):
            if "ONLINE" in row.inner_text():
                break
            page.wait_for_timeout(500)
            page.reload()
        expect(row).to_contain_text("ONLINE")
    console.browser.shot(page, "04-hosts-online")


def test_prepare_a_host_again(console: Console) -> None:
    page = console.page
    host = console.lab.hosts[0]
    page.goto(console.url("/hosts"))
    page.locator("#hosts tr", has_text=host.ip).locator(
        "button:text-is('Prepare host again')"
    ).click()
    confirm(page)
    on_task_page(page)
    assert task_end(page) == "SUCCESSFUL"
    expect(page.locator("g.head text")).to_have_text([host.ip])  # the one host it acts on
    console.browser.shot(page, "04-host-prepared-again")


def test_import_an_ob_cluster(console: Console) -> None:
    page = console.page
    page.goto(console.url("/ob-clusters"))
    form = page.locator("#import-ob")
    ip, rpc_port, sql_port = ROOT_SERVER
    form.locator("[name=name]").fill(OB_CLUSTER)
    form.locator("[name=obClusterId]").fill("1")
    form.locator("[name=rootServers]").fill(f"{ip}:{rpc_port}:{sql_port}")
    form.locator("[name=proxyroPassword]").fill("Proxyro_pw_1")
    form.locator("button[type=submit]").click()
    confirm(page)
    expect(page.locator("#ob-clusters")).to_contain_text(f"{ip}:{rpc_port}")
    console.browser.shot(page, "05-ob-clusters")


def test_wizard_gives_an_ob_cluster_a_new_proxyro_credential(console: Console) -> None:
    page = console.page
    page.goto(console.url("/clusters/new"))
    link = page.locator(".ob-link", has_text=OB_CLUSTER)
    # The credential the import stored, by its name from the password box.
    expect(link.locator(".proxyro-name")).to_have_text(f"proxyro_{OB_CLUSTER}")
    link.locator("summary").click()
    link.locator("[data-field=credential]").select_option("new")
    link.locator("[data-field=new-name]").fill("proxyro_rotated")
    link.locator("[data-field=new-password]").fill("Proxyro_pw_1")  # the cluster's own
    console.browser.shot(page, "05-wizard-proxyro-new")
    link.locator(".proxyro-set").click()
    confirm(page)
    expect(page.locator("#flash.ok")).to_contain_text("proxyro_rotated")
    expect(link.locator(".proxyro-name")).to_have_text("proxyro_rotated")
    console.browser.shot(page, "05-wizard-proxyro")
    assert "Proxyro_pw_1" not in page.content()
    page.reload()  # the OB cluster's record says so, and the box has it (its name only)
    expect(link.locator(".proxyro-name")).to_have_text("proxyro_rotated")
    page.goto(console.url("/credentials"))
    expect(page.locator("#credentials")).to_contain_text("proxyro_rotated")


def test_wizard_refuses_with_the_apis_message(console: Console) -> None:
    page = console.page
    page.goto(console.url("/clusters/new"))
    page.fill("[name=name]", "bad name!")
    page.click("#create-cluster button[type=submit]")
    confirm(page)
    expect(page.locator("#flash")).to_be_visible()
    assert page.locator("#flash").inner_text().strip() != ""
    expect(page).to_have_url(re.compile(r"/clusters/new$"))


def test_create_a_cluster_in_the_wizard_and_watch_its_graph_turn_green(console: Console) -> None:
    page = console.page
    page.goto(console.url("/clusters/new"))
    page.fill("[name=name]", CLUSTER)
    page.select_option("[name=workMode]", "RS_LIST")
    page.locator("[name='obLinks[]']").first.check()
    hosts = console.lab.hosts[:2]
    for host in hosts:
        page.locator("label.check", has_text=host.ip).locator("input").check()
    page.fill("[name='obproxyInstallParam.sqlPort']", str(SQL_PORT))
    page.fill("[name='obproxyInstallParam.exportPort']", str(EXPORTER_PORT))
    page.click("[data-add-param='#runtime-params']")
    row = page.locator("#runtime-params .param-row").last
    row.locator("[data-field=name]").select_option("syslog_level")
    # The value input follows the catalog: its allowed values to pick from, and its help.
    expect(row.locator(".param-help")).not_to_be_empty()
    row.locator("select[data-field=value]").select_option("WARN")
    console.browser.shot(page, "06-wizard")
    page.click("#create-cluster button[type=submit]")
    confirm(page)
    on_task_page(page)
    page.evaluate("window.notReloaded = true")
    first = page.locator("#task-status").inner_text()
    assert task_end(page) == "SUCCESSFUL"
    # The graph changed in place, from the event stream: the page was never reloaded.
    assert first == "RUNNING" and page.evaluate("window.notReloaded") is True
    # Each host's column is headed by its address.
    expect(page.locator("g.head text")).to_have_text([host.ip for host in hosts])
    nodes = page.locator("g.node")
    assert nodes.count() > 2 * 6
    assert {n.get_attribute("data-status") for n in nodes.all()} == {"SUCCESSFUL"}
    console.browser.shot(page, "07-task-green")

    page.locator("g.node[data-name='Start obproxy process']").first.click()
    expect(page.locator("#subtask-log")).not_to_be_empty()
    expect(page.locator("g.node.selected")).to_have_count(1)
    console.browser.shot(page, "08-subtask-log")

    page.goto(console.url("/clusters"))
    row = page.locator("#clusters tr", has_text=CLUSTER)
    expect(row).to_contain_text("2 / 2")
    expect(row).to_contain_text("RUNNING")
    console.browser.shot(page, "09-clusters")


def test_wizard_marks_the_ports_recorded_obproxies_take_and_the_api_refuses_them(
    console: Console,
) -> None:
    page = console.page
    page.goto(console.url("/clusters/new"))
    used, free = console.lab.hosts[:2], console.lab.hosts[2]

    def state(host: NetnsHost) -> Locator:
        return page.locator("label.check", has_text=host.ip).locator(".port-state")

    page.fill("[name='obproxyInstallParam.sqlPort']", str(SQL_PORT))
    page.fill("[name='obproxyInstallParam.exportPort']", str(SQL_PORT + 100))
    for host in used:
        expect(state(host)).to_have_text(f"port {SQL_PORT} taken by OBProxy cluster {CLUSTER}")
    expect(state(free)).to_contain_text("ports free")
    page.fill("[name='obproxyInstallParam.exportPort']", str(EXPORTER_PORT))
    expect(state(used[0])).to_contain_text(f"port {EXPORTER_PORT} taken by OBProxy cluster")
    console.browser.shot(page, "09-wizard-ports-taken")
    page.fill("[name='obproxyInstallParam.sqlPort']", str(SQL_PORT + 100))
    page.fill("[name='obproxyInstallParam.exportPort']", str(SQL_PORT + 101))
    for host in console.lab.hosts:
        expect(state(host)).to_contain_text("ports free")
    # Submitted anyway on a taken port: the API's own refusal is the last word.
    page.fill("[name=name]", "web2")
    page.locator("[name='obLinks[]']").first.check()
    page.fill("[name='obproxyInstallParam.sqlPort']", str(SQL_PORT))
    page.locator("label.check", has_text=used[0].ip).locator("input").check()
    page.click("#create-cluster button[type=submit]")
    confirm(page)
    expect(page.locator("#flash")).to_contain_text(f"port {SQL_PORT} on host {used[0].ip}")
    expect(page).to_have_url(re.compile(r"/clusters/new$"))


def test_wizard_shows_the_apis_refusal_of_another_proxyro_password_for_a_linked_cluster(
    console: Console,
) -> None:
    page = console.page
    page.goto(console.url("/clusters/new"))
    link = page.locator(".ob-link", has_text=OB_CLUSTER)
    link.locator("summary").click()
    link.locator("[data-field=credential]").select_option("new")
    link.locator("[data-field=new-name]").fill("proxyro_other")
    link.locator("[data-field=new-password]").fill("Other_pw_22")
    link.locator(".proxyro-set").click()
    confirm(page)
    expect(page.locator("#flash.error")).to_contain_text(f"OBProxy clusters {CLUSTER} link to it")
    expect(link.locator(".proxyro-name")).to_have_text("proxyro_rotated")
    console.browser.shot(page, "09-wizard-proxyro-refused")
    # The credential made for it is taken out of the password box again.
    page.goto(console.url("/credentials"))
    expect(page.locator("#credentials")).to_contain_text("proxyro_rotated")
    expect(page.locator("#credentials")).not_to_contain_text("proxyro_other")


def _cluster_page(console: Console) -> Page:
    page = console.page
    page.goto(console.url("/clusters"))
    page.click(f"#clusters a:text-is('{CLUSTER}')")
    page.wait_for_url(re.compile(r"/console/clusters/\d+$"))  # loaded, its script running
    return page


def test_restart_an_obproxy(console: Console) -> None:
    page = _cluster_page(console)
    console.browser.shot(page, "10-cluster")
    page.locator("#obproxies tbody input[type=checkbox]").first.check()
    page.click("button:text-is('Restart')")
    confirm(page)
    on_task_page(page)
    assert task_end(page) == "SUCCESSFUL"
    assert "Restart" in page.locator("h1").inner_text()


def proxysys_password(console: Console) -> str:
    """The cluster's root@proxysys password, as obfleet keeps it."""
    data_dir = console.server.data_dir
    db = Database(f"sqlite:///{data_dir / 'obfleet.db'}")
    box = SecretBox(load_or_create_key(data_dir, SECRET_KEY))
    with httpx.Client() as api:
        fleet = Fleet(console.server, api, db, box, console.lab, {})
        try:
            return fleet.proxysys_password(CLUSTER)
        finally:
            db.dispose()


def test_change_a_parameter_and_see_the_drift_clear(console: Console) -> None:
    # One obproxy changed by hand: the page marks the parameter as drifting.
    alter_by_hand(console.lab.hosts[0], proxysys_password(console), "syslog_level", "DEBUG")
    page = _cluster_page(console)
    expect(page.locator("#parameters tr.drift[data-parameter='syslog_level']")).to_have_count(1)
    console.browser.shot(page, "10-cluster-drift")
    page.click("[data-add-param='#change-params']")
    row = page.locator("#change-params .param-row").last
    row.locator("[data-field=name]").select_option("syslog_level")
    row.locator("select[data-field=value]").select_option("ERROR")
    page.click("#change-parameter button[type=submit]")
    confirm(page)
    on_task_page(page)
    assert task_end(page) == "SUCCESSFUL"
    page = _cluster_page(console)
    expect(page.locator("#parameters tr[data-parameter='syslog_level']")).to_contain_text("ERROR")
    expect(page.locator("#parameters tr.drift")).to_have_count(0)
    console.browser.shot(page, "11-parameter-changed")


def test_a_failed_install_shows_the_red_subtask_and_retry_finishes_it(console: Console) -> None:
    host = console.lab.hosts[2]
    page = _cluster_page(console)
    with host.occupy_port(EXPORTER_PORT):
        page.locator("details", has_text="Add OBProxies").locator("summary").click()
        page.locator("label.check", has_text=host.ip).locator("input").check()
        page.click("details[open] button[type=submit]")
        confirm(page)
        on_task_page(page)
        assert task_end(page) == "FAILED"
        failed = page.locator("g.node[data-status='FAILED']")
        expect(failed).to_have_count(1)
        failed.click()
        expect(page.locator("#subtask-log")).to_contain_text(
            f"port {EXPORTER_PORT} on {host.ip} is already in use"
        )
        console.browser.shot(page, "12-task-failed")
    page.click("button:text-is('Retry')")
    with page.expect_navigation():  # the page shows the task again, retried
        confirm(page)
    assert task_end(page) == "SUCCESSFUL"
    console.browser.shot(page, "13-task-retried")


def test_upgrade_the_obproxies_to_another_package(
    console: Console, tmp_path_factory: pytest.TempPathFactory
) -> None:
    newer = build_standin_rpm(tmp_path_factory.mktemp("newer"), version=NEWER, release=RELEASE)
    page = console.page
    page.goto(console.url("/packages"))
    page.set_input_files("#upload input[type=file]", str(newer))
    page.click("#upload button[type=submit]")
    expect(page.locator("#packages")).to_contain_text(newer.name)
    page = _cluster_page(console)
    for box in page.locator("#obproxies tbody input[type=checkbox]").all():
        box.check()
    target = page.locator("[name=shortRpmName] option", has_text=NEWER).get_attribute("value")
    page.select_option("[name=shortRpmName]", target)
    page.click("button:text-is('Upgrade to')")
    confirm(page)
    on_task_page(page)
    assert task_end(page) == "SUCCESSFUL"
    page = _cluster_page(console)
    expect(page.locator("#obproxies")).to_contain_text(NEWER)
    expect(page.locator("#obproxies")).not_to_contain_text("4.2.3.0-")


def test_delete_an_obproxy(console: Console) -> None:
    page = _cluster_page(console)
    row = page.locator("#obproxies tbody tr", has_text=console.lab.hosts[2].ip)
    row.locator("input[type=checkbox]").check()
    page.click("#obproxies ~ .actions button:text-is('Delete')")
    confirm(page)
    on_task_page(page)
    assert task_end(page) == "SUCCESSFUL"
    page.goto(console.url("/clusters"))
    expect(page.locator("#clusters tr", has_text=CLUSTER)).to_contain_text("2 / 2")


def test_take_over_an_obproxy_running_on_a_host(
    console: Console,
    payload: dict[str, Any],  # noqa: F811
) -> None:
    # Started by hand on the host whose obproxy of the cluster was deleted: with the cluster's
    # name, its OceanBase cluster and its run-as user, as take-over requires.
    host = console.lab.hosts[2]
    host.run(f"rm -rf {HOME}", check=True)
    pid = start_by_hand(
        host,
        payload,
        exporter_port=EXPORTER_PORT,
        password=proxysys_password(console),
        app_name=CLUSTER,
        run_user=DEFAULT_RUN_USER,
    )
    page = _cluster_page(console)
    form = page.locator("details", has_text="Take over running OBProxy")
    form.locator("summary").click()
    form.locator("[name='hosts.0.hostId']").select_option(label=host.ip)
    form.locator("[name='hosts.0.sqlPort']").fill(str(SQL_PORT))
    console.browser.shot(page, "16-take-over-form")
    form.locator("button[type=submit]").click()
    confirm(page)
    on_task_page(page)
    assert task_end(page) == "SUCCESSFUL"
    assert "Take over" in page.locator("h1").inner_text()
    console.browser.shot(page, "16-take-over-task")
    page = _cluster_page(console)
    expect(page.locator("#obproxies tbody tr", has_text=host.ip)).to_contain_text("RUNNING")
    console.browser.shot(page, "16-taken-over")
    assert int(host.read_file(f"{HOME}/run/obproxy.pid")) == pid  # adopted, not restarted


def test_link_a_second_ob_cluster_and_unlink_it(console: Console) -> None:
    page = console.page
    page.goto(console.url("/ob-clusters"))
    form = page.locator("#import-ob")
    form.locator("[name=name]").fill(SECOND_OB)
    form.locator("[name=obClusterId]").fill("2")
    form.locator("[name=rootServers]").fill(SECOND_OB_ROOT)
    form.locator("[name=proxyroPassword]").fill(PROXYRO_PASSWORD)
    form.locator("button[type=submit]").click()
    confirm(page)
    expect(page.locator("#ob-clusters")).to_contain_text(SECOND_OB)
    # Only a CONFIG_URL cluster serves more than one OceanBase cluster: one without obproxies.
    page.goto(console.url("/clusters/new"))
    page.fill("[name=name]", LINKING)
    page.select_option("[name=workMode]", "CONFIG_URL")
    page.locator(f".ob-link[data-ob-name='{OB_CLUSTER}'] [name='obLinks[]']").check()
    page.click("#create-cluster button[type=submit]")
    confirm(page)
    on_task_page(page)
    assert task_end(page) == "SUCCESSFUL"
    page.goto(console.url("/clusters"))
    page.click(f"#clusters a:text-is('{LINKING}')")
    page.wait_for_url(re.compile(r"/console/clusters/\d+$"))
    links = page.locator("ul.links")
    page.locator("select[name=link]").select_option(label=SECOND_OB)
    page.click("button:text-is('Link an OB cluster')")
    confirm(page)
    expect(links.locator("li", has_text=SECOND_OB)).to_have_count(1)
    console.browser.shot(page, "17-ob-cluster-linked")
    links.locator("li", has_text=SECOND_OB).locator("button:text-is('Unlink')").click()
    confirm(page)
    expect(links.locator("li", has_text=SECOND_OB)).to_have_count(0)
    expect(links).to_contain_text(OB_CLUSTER)
    console.browser.shot(page, "17-ob-cluster-unlinked")


def test_read_only_user_sees_no_write_button_and_the_api_refuses_anyway(
    console: Console,
) -> None:
    db = Database(f"sqlite:///{console.server.data_dir / 'obfleet.db'}")
    try:
        with db.transaction() as session:
            create_user(session, VIEWER, VIEWER_PASSWORD, ["CLUSTER_VIEWER"])
    finally:
        db.dispose()
    page = console.browser.page(console.lab.gateway_ip)
    page.goto(console.url("/login"))
    page.fill("input[name=username]", VIEWER)
    page.fill("input[name=password]", VIEWER_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#clusters")).to_contain_text(CLUSTER)
    assert page.locator("a:text-is('Create cluster')").count() == 0
    page.click(f"#clusters a:text-is('{CLUSTER}')")
    console.browser.shot(page, "14-read-only-cluster")
    for path in ("", "/hosts", "/packages", "/credentials", "/ob-clusters"):
        if path:
            page.goto(console.url(path))
        writes = page.locator(".api-button, .api-form, .upload-form, [data-add-param]")
        assert writes.count() == 0, path
    status = page.evaluate(
        """async () => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch('/api/v2/obproxy/clusters/1', {
                method: 'DELETE', headers: {'X-CSRF-Token': csrf}});
            return r.status;
        }"""
    )
    assert status == 403


def test_delete_the_cluster(console: Console) -> None:
    page = _cluster_page(console)
    page.click("button:text-is('Delete cluster')")
    confirm(page)
    on_task_page(page)
    assert task_end(page) == "SUCCESSFUL"
    page.goto(console.url("/clusters"))
    expect(page.locator("#clusters")).not_to_contain_text(CLUSTER)
    console.browser.shot(page, "15-cluster-deleted")
    assert console.browser.blocked == []


def test_a_copied_session_cookie_gets_no_page_after_logout(console: Console) -> None:
    page = console.page
    page.goto(console.url("/clusters"))
    (copied,) = [c for c in page.context.cookies() if c["name"] == COOKIE]
    page.click("form.logout button[type=submit]")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    # Replayed from another browser, the cookie from before the logout opens nothing.
    replay = console.browser.page(console.lab.gateway_ip)
    replay.context.add_cookies([copied])
    replay.goto(console.url("/clusters"))
    expect(replay).to_have_url(re.compile(r"/console/login\?next="))
    expect(replay.locator("input[name=password]")).to_be_visible()
    expect(replay.locator(".flash.error")).to_have_text("Your session has ended; log in again.")
    console.browser.shot(replay, "18-logged-out-cookie-replayed")
    api = replay.context.request.get(f"{console.server.url}/api/v2/obproxy/clusters")
    assert api.status == 401
