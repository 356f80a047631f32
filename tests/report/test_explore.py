"""`s1mple explore`: the real server process over a store of results, a finished and a running sweep;
its page in chromium (live progress); no path outside the store is served."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.browser import CHROMIUM


def part_lines(folder: Path) -> list[str]:
    return [line for p in sorted((folder / "results").glob("*.jsonl")) for line in p.read_text().splitlines()]


@pytest.fixture
def store(results, tmp_path) -> Path:
    """runs/grid and runs/vt finished; runs/live planned with 10 results so far; a secret beside runs/."""
    runs = tmp_path / "runs"
    shutil.copytree(results["grid"], runs / "grid")
    shutil.copytree(results["vt"], runs / "team" / "vt")
    (runs / "team" / "vt" / "report.html").unlink()  # built on request
    live = runs / "live"
    (live / "results").mkdir(parents=True)
    shutil.copy(results["grid"] / "manifest.json", live / "manifest.json")
    (live / "results" / "part-1.jsonl").write_text("\n".join(part_lines(results["grid"])[:10]) + "\n")
    (tmp_path / "secret.txt").write_text("top secret")
    return runs


@pytest.fixture
def server(store):
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "s1mple"), "explore", str(store), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    assert match, line
    yield int(match.group(1))
    proc.terminate()
    proc.wait(timeout=30)


def get(port: int, raw_path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.putrequest("GET", raw_path, skip_accept_encoding=True)  # sent as is: no client normalisation
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def test_lists_the_store_and_serves_reports(server, store, results):
    status, body = get(server, "/api/research")
    assert status == 200
    listing = {r["folder"]: r for r in json.loads(body)["research"]}
    assert set(listing) == {"grid", "team/vt", "live"}
    grid = listing["grid"]
    assert (grid["kind"], grid["name"], grid["state"], grid["done"], grid["total"]) == (
        "optimization",
        "MA Crossover Grid",
        "finished",
        640,
        640,
    )
    assert grid["best"].startswith("sharpe_ratio=") and grid["report"] is True
    assert listing["team/vt"]["kind"] == "variant_test" and listing["team/vt"]["best"] == "fixed_rr"
    live = listing["live"]
    assert (live["state"], live["done"], live["total"]) == ("running", 10, 640)

    status, page = get(server, "/report/grid")
    assert status == 200 and page == (store / "grid" / "report.html").read_bytes()
    status, page = get(server, "/report/team/vt")  # no report.html stored: built on request
    assert status == 200 and b"variant-equity" in page
    assert get(server, "/report/live")[0] == 404  # running: no report yet
    assert get(server, "/report/grid/results")[0] == 404  # inside the store, but not a research folder


@pytest.mark.parametrize(
    "path",
    [
        "/report/../../secret.txt",
        "/report/grid/../../secret.txt",
        "/report/%2e%2e/%2e%2e/secret.txt",
        "/report/%2E%2E%2F%2E%2E%2Fsecret.txt",
        "/report/%252e%252e/%252e%252e/secret.txt",
        "/report/grid%2f..%2f..%2fsecret.txt",
        "/report/..%5c..%5csecret.txt",
        "/%2e%2e/secret.txt",
        "/report/.%2e/secret.txt",
    ],
)
def test_refuses_paths_outside_the_store(server, path):
    status, body = get(server, path)
    assert status in (400, 404), (path, status)
    assert b"top secret" not in body


def test_a_browsers_icon_request_gets_no_icon_not_an_error(server):
    """A report served here links no icon (the page is self-contained): the browser's /favicon.ico
    request gets 204 No Content, not a 404 in its console."""
    assert get(server, "/favicon.ico") == (204, b"")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (tests/system/install)")
def test_page_shows_live_progress_of_a_running_sweep(server, store, results, browser, shots):
    browser.events.clear()
    browser.open(f"http://127.0.0.1:{server}/", ready="document.body.dataset.loaded === 'true'")
    row = "document.querySelector('tr[data-folder=\"live\"]')"
    assert "10 / 640" in browser.eval(f"{row}.textContent")
    assert browser.eval(f"{row}.cells[3].textContent") == "running"
    # more results arrive: the page follows without a reload
    lines = part_lines(results["grid"])
    (store / "live" / "results" / "part-2.jsonl").write_text("\n".join(lines[10:300]) + "\n")
    browser.wait(f"{row}.textContent.includes('300 / 640')", timeout=60)
    browser.screenshot(shots / "explore.png")
    # the link opens the report
    browser.eval("document.querySelector('tr[data-folder=\"grid\"] a').click()")
    browser.wait("document.body && document.body.dataset.rendered === 'true'", timeout=120)
    assert browser.eval("document.title") == "Optimization MA Crossover Grid"
    assert browser.errors() == []
