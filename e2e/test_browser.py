"""A real browser on the operator's pages: headless Chromium (Debian's package) loads the admin's
Live sessions page and the FTP dashboard of the demo site after some FTP traffic, logged in as
admin/admin-password (the session cookie from the admin's login form, handed to Chromium over
its DevTools protocol). Screenshots go to e2e/.artifacts/; the pages must log no console error
and the dashboard must hold its SVG charts. The user page's FTP section is shot too."""

from __future__ import annotations

import base64
import ftplib
import io
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, USERS, Stack
from test_live_sessions import ADMIN, AdminSession, wait_page

websocket = pytest.importorskip(
    "websocket", reason="websocket-client (e2e/requirements.txt)"
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "e2e" / ".artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
    "--remote-debugging-port=0",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


class Browser:
    """One Chromium page driven over the DevTools protocol; collects console errors."""

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.errors: list[str] = []
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(
            json.dumps({"id": self.next_id, "method": method, "params": params})
        )
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        self.events.append(message)
        if method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params["exceptionDetails"])[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in (
            "error",
            "assert",
        ):
            self.errors.append(json.dumps(params.get("args"))[:500])
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('text')} ({entry.get('url', '')})")

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + 30
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            assert time.monotonic() < deadline, f"{url} did not load"
            self._event(json.loads(self.ws.recv()))

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True
        )
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        png = self.call(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True
        )
        path.write_bytes(base64.b64decode(png["data"]))


@pytest.fixture
def browser() -> Iterator[Browser]:
    profile = Path(tempfile.mkdtemp(prefix="djftpd-chromium-"))
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert proc.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, (
                "chromium did not open its DevTools port"
            )
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/json/list", timeout=10
        ) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        b = Browser(pages[0]["webSocketDebuggerUrl"])
        yield b
        b.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def traffic(stack: Stack) -> None:
    """Some logins, uploads, downloads and a failed login, for the charts."""
    for user in ("alice", "bob"):
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", stack.ftp_port, timeout=10)
        ftp.login(user, USERS[user])
        if user == "alice":
            ftp.storbinary("STOR chart.bin", io.BytesIO(b"c" * 300_000))
        ftp.retrbinary("RETR chart.bin" if user == "alice" else "LIST", lambda _: None)
        ftp.quit()
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=10)
    with pytest.raises(ftplib.error_perm):
        ftp.login("alice", "wrong")
    ftp.close()


def test_live_page_and_dashboard_in_chromium(stack: Stack, browser: Browser):
    ARTIFACTS.mkdir(exist_ok=True)
    traffic(stack)
    admin = AdminSession(stack)
    admin.login(*ADMIN)
    for cookie in admin.jar:
        browser.call(
            "Network.setCookie",
            name=cookie.name,
            value=cookie.value,
            domain="127.0.0.1",
            path=cookie.path,
        )
    # One session stays open, in a transfer, while the live page is shown.
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=10)
    ftp.login("alice", USERS["alice"])
    data = ftp.transfercmd("STOR in-progress.bin")
    data.sendall(b"x" * 123_456)
    wait_page(admin, "/admin/djftpd/livesession/", r"in-progress\.bin")
    # The event log needs the last events delivered (the sidecar flushes every second): the
    # failed login is the last. (The unfiltered page names "login failed" in its type filter
    # whatever the rows hold, so the wait looks at the filtered rows.)
    wait_page(
        admin,
        "/admin/djftpd/ftpevent/?type__exact=login_failed",
        r'<td class="field-username">alice</td>',
    )
    base = f"http://127.0.0.1:{stack.django_port}"

    browser.open(base + "/admin/djftpd/livesession/?refresh=0")
    browser.screenshot(ARTIFACTS / "live_sessions.png")
    rows = browser.evaluate(
        "document.querySelectorAll('#live-sessions tr[data-session]').length"
    )
    title = browser.evaluate("document.title")
    styled = browser.evaluate(
        "getComputedStyle(document.getElementById('header')).display"
    )

    browser.open(base + "/admin/djftpd/ftpevent/")
    browser.screenshot(ARTIFACTS / "dashboard.png")
    charts = browser.evaluate(
        "document.querySelectorAll('#ftp-dashboard svg.ftp-chart').length"
    )
    bars = browser.evaluate(
        "document.querySelectorAll('#ftp-dashboard svg.ftp-chart rect').length"
    )

    alice = wait_page(
        admin, "/admin/auth/user/?q=alice", r'href="(/admin/auth/user/\d+/change/)'
    )
    browser.open(base + alice.group(1))
    browser.screenshot(ARTIFACTS / "user_page.png")
    panel_sessions = browser.evaluate(
        "document.querySelectorAll('#ftp-user-panel tr[data-session]').length"
    )

    data.close()
    ftp.close()
    assert "Live FTP sessions" in title
    assert rows >= 1
    assert styled == "flex"  # the admin's stylesheet loaded: it looks like the admin
    assert charts == 3
    assert bars >= 5
    assert panel_sessions >= 1
    assert browser.errors == []
