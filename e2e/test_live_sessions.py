"""The operator's view, end to end: an FTP session opened with ftplib shows on the admin's
Live sessions page (fetched over HTTP by the demo's staff user admin/admin-password, logged in
through the admin's login form), its Disconnect button ends it (the client gets 421 or EOF)
and the event log shows the cut upload as incomplete (DESIGN.md section 10)."""

from __future__ import annotations

import ftplib
import http.cookiejar
import re
import socket
import time
import urllib.parse
import urllib.request
import uuid

import pytest
from conftest import USERS, Stack

DEADLINE = 10.0
ADMIN = ("admin", "admin-password")


class AdminSession:
    """A browser-like HTTP client of the demo's admin: cookies, CSRF token, no redirects
    followed silently beyond what urllib does."""

    def __init__(self, stack: Stack) -> None:
        self.base = f"http://127.0.0.1:{stack.django_port}"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), urllib.request.ProxyHandler({})
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.read().decode()

    def post(self, path: str, form: dict[str, str], referer: str) -> str:
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": self.csrf(), **form}).encode()
        request = urllib.request.Request(
            self.base + path, data=data, headers={"Referer": self.base + referer}
        )
        with self.opener.open(request, timeout=10) as response:
            return response.read().decode()

    def csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def login(self, username: str, password: str) -> None:
        self.get("/admin/login/")
        page = self.post(
            "/admin/login/?next=/admin/",
            {"username": username, "password": password, "next": "/admin/"},
            "/admin/login/",
        )
        assert "Log out" in page or "logout" in page, "admin login failed"


def wait_page(admin: AdminSession, path: str, pattern: str) -> re.Match[str]:
    deadline = time.monotonic() + DEADLINE
    page = ""
    while time.monotonic() < deadline:
        page = admin.get(path)
        if match := re.search(pattern, page, re.DOTALL):
            return match
        time.sleep(0.3)
    raise AssertionError(f"{pattern!r} not on {path} within {DEADLINE}s:\n{page[-3000:]}")


@pytest.fixture
def admin(stack: Stack) -> AdminSession:
    session = AdminSession(stack)
    session.login(*ADMIN)
    return session


def test_live_page_shows_a_session_and_disconnects_it(stack: Stack, admin: AdminSession):
    marker = f"live-{uuid.uuid4().hex[:8]}.bin"
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=10)
    ftp.login("alice", USERS["alice"])
    ftp.voidcmd("TYPE I")
    data = ftp.transfercmd(f"STOR {marker}")
    data.sendall(b"x" * 5000)

    row = wait_page(
        admin,
        "/admin/djftpd/livesession/",
        r'<tr data-session="([0-9a-f]{16})">(?:(?!</tr>).)*?alice(?:(?!</tr>).)*?'
        + re.escape(marker)
        + r"(?:(?!</tr>).)*?4\.9\xa0KB(?:(?!</tr>).)*?"
        + r'<button[^>]*value="session:\1">Disconnect</button>',
    )
    session_id = row.group(1)

    page = admin.post(
        "/admin/djftpd/livesession/close/",
        {"action": f"session:{session_id}"},
        "/admin/djftpd/livesession/",
    )
    assert "1 session of" in page
    assert f'data-session="{session_id}"' not in page

    # The data connection is cut, then the control connection: 426, then 421 or EOF.
    data.settimeout(5)
    try:
        assert data.recv(1) == b""
    except OSError:
        pass
    data.close()
    with pytest.raises((ftplib.Error, EOFError, OSError)):
        ftp.voidresp()
    with pytest.raises((ftplib.Error, EOFError, OSError)) as ended:
        ftp.voidcmd("NOOP")
    assert "421" in str(ended.value) or not isinstance(ended.value, ftplib.Error)
    ftp.close()
    assert not (stack.home("alice") / marker).exists()

    wait_page(
        admin,
        f"/admin/djftpd/ftpevent/?q={marker}",
        r"incomplete file received(?:(?!</tr>).)*?" + re.escape(marker),
    )


def test_disconnect_every_session_of_a_user(stack: Stack, admin: AdminSession):
    clients = []
    for _ in range(2):
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", stack.ftp_port, timeout=10)
        ftp.login("bob", USERS["bob"])
        clients.append(ftp)
    wait_page(admin, "/admin/djftpd/livesession/", r"(<strong>bob</strong>.*){2}")

    page = admin.post(
        "/admin/djftpd/livesession/close/", {"action": "user:bob"}, "/admin/djftpd/livesession/"
    )

    assert "2 sessions of bob closed." in page
    for ftp in clients:
        with pytest.raises((ftplib.Error, EOFError, socket.timeout, OSError)):
            ftp.voidcmd("NOOP")
        ftp.close()
