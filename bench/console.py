"""Console benchmark, run by hand as root: `python -m bench.console`.

A real `obfleet serve` (SQLite in a temp dir) deploys an OBProxy cluster to 16 test hosts (the
stand-in RPM, RS_LIST), so its "Install obproxy" task has 16 per-host branches. Then, in the same
run: GET /api/v2/time (the baseline: its median latency), and the task's console page opened in
Debian's chromium (Playwright), logged in, each time in a fresh tab: its first contentful paint
(the browser's Paint Timing, from navigation start) and the page's HTML alone over HTTP. It
prints the medians and each as a ratio to the baseline, and saves the page's screenshot in
screenshots/bench-install-task.png.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from bench.deploy import Round, deploy
from tests.conftest import ADMIN_PASSWORD
from tests.deploy.conftest import fleet_server, running_fleet
from tests.standin.rpm import build_standin_rpm
from tests.support.browser import CHROMIUM, OfflineBrowser
from tests.support.testhosts import HostLab

FIRST_PAINT = """() => {
    const paint = performance.getEntriesByName('first-contentful-paint')[0];
    return paint ? paint.startTime : -1;
}"""


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples)


def time_latency(base: str, count: int) -> list[float]:
    latencies = []
    with httpx.Client(base_url=base, trust_env=False) as client:
        client.get("/api/v2/time").raise_for_status()
        for _ in range(count):
            started = time.perf_counter()
            client.get("/api/v2/time").raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def page_html_latency(base: str, path: str, count: int) -> list[float]:
    latencies = []
    with httpx.Client(base_url=base, trust_env=False) as client:
        login = client.post(
            "/console/login", data={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 303 and "obfleet_session" in client.cookies, login.text
        client.get(path).raise_for_status()
        for _ in range(count):
            started = time.perf_counter()
            client.get(path).raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def first_paints(base: str, path: str, count: int) -> list[float]:
    paints = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{base}/console/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/console/clusters"))
        page.close()
        for _ in range(count + 1):  # the first one warms the caches and is not counted
            tab = context.new_page()
            tab.goto(base + path)
            tab.locator("g.node").first.wait_for()
            paints.append(float(tab.evaluate(FIRST_PAINT)))
            if len(paints) == 1:  # what a 16-host graph looks like
                OfflineBrowser.shot(tab, "bench-install-task")
            tab.close()
        browser.close()
    return paints[1:]


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="obfleet-bench-console-") as tmp:
        rpm = build_standin_rpm(Path(tmp) / "rpm")
        lab = HostLab(args.hosts)
        try:
            lab.start()
            server = fleet_server(lab, Path(tmp) / "data")
            with running_fleet(server, lab, rpm) as fleet:
                rnd = Round(0, rpm.name, "4.2.3.0")
                _, task = deploy(fleet, "bench_console", lab.hosts, rnd, args.timeout)
                path = f"/console/tasks/{task['id']}"
                print(f"task {task['id']}: {len(task['subtasks'])} subtasks on {args.hosts} hosts")
                baseline = median_ms(time_latency(server.url, args.requests))
                html = median_ms(page_html_latency(server.url, path, args.requests))
                paint = median_ms(first_paints(server.url, path, args.pages))
            print(f"{'':44} {'median ms':>10} {'vs GET /api/v2/time':>20}")
            print(f"{'GET /api/v2/time (baseline)':44} {baseline:10.1f} {1:19.1f}x")
            print(f"{'task page HTML (GET, logged in)':44} {html:10.1f} {html / baseline:19.1f}x")
            print(
                f"{'task page first contentful paint (chromium)':44} {paint:10.1f} "
                f"{paint / baseline:19.1f}x"
            )
        finally:
            lab.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=16, help="hosts of the install task")
    parser.add_argument("--requests", type=int, default=50, help="timed GETs of each kind")
    parser.add_argument("--pages", type=int, default=10, help="timed page loads in chromium")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the install")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
