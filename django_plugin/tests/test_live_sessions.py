"""The admin's live sessions page, its actions, the FTP dashboard and the user page's FTP
section. The sidecars are small HTTP servers that check our signatures and sign their answers
like the real one (the e2e suite runs the real binary: e2e/test_live_sessions.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from djftpd import sidecar_client
from djftpd.dashboard import dashboard
from djftpd.models import FTPAccount, FTPEvent
from djftpd.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

pytestmark = pytest.mark.django_db

SECRET = "tests-secret-0123456789abcdef-0123456789"
LIVE = "admin:djftpd_livesession_changelist"
CLOSE = "admin:djftpd_livesession_close"


def a_session(sid: str, username: str | None = "alice", **extra: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "protocol": "ftp",
        "username": username,
        "client_ip": "192.0.2.7",
        "connected_at": "2026-12-01T10:00:00.123456789Z",
        "command": None,
        "transfer": None,
        **extra,
    }


@dataclass
class LiveSidecar:
    """An ops listener serving /sessions (``page`` sessions per answer) and /sessions/close."""

    url: str = ""
    sessions: list[dict[str, Any]] = field(default_factory=list)
    page: int = 1000
    delay: float = 0.0
    answer_purpose: str | None = None  # sign answers for another purpose
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def live(settings) -> Iterator[LiveSidecar]:
    fake = LiveSidecar()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            purpose = {"/sessions": "sessions", "/sessions/close": "sessions-close"}.get(
                self.path, "cache-purge"
            )
            verify(
                body,
                self.headers[TIMESTAMP_HEADER],
                self.headers[SIGNATURE_HEADER],
                SECRET,
                purpose=purpose,
            )
            payload = json.loads(body)
            fake.calls.append((self.path, payload))
            time.sleep(fake.delay)
            if self.path == "/sessions":
                start = int(payload.get("cursor", "0"))
                end = start + fake.page
                more = end < len(fake.sessions)
                answer = {
                    "ok": True,
                    "sessions": fake.sessions[start:end],
                    "cursor": str(end) if more else None,
                }
            elif self.path == "/sessions/close":
                gone = [
                    s
                    for s in fake.sessions
                    if s["id"] == payload.get("session") or s["username"] == payload.get("username")
                ]
                fake.sessions = [s for s in fake.sessions if s not in gone]
                answer = {"ok": True, "closed": len(gone)}
            else:
                answer = {"ok": True}
            out = json.dumps(answer).encode()
            headers = sign(
                out,
                SECRET,
                purpose=fake.answer_purpose or purpose,
                request_signature=self.headers[SIGNATURE_HEADER],
            )
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/"
    settings.DJFTPD = {**settings.DJFTPD, "SECRET": SECRET, "SIDECAR_URLS": [fake.url]}
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def permission(name: str) -> Permission:
    """``name`` as "app_label.codename" (``sessions.view_session`` is Django's own)."""
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def staff(django_user_model, client: Client, *codenames: str) -> Client:
    user = django_user_model.objects.create_user("staffer", password="x", is_staff=True)
    for perm in codenames:
        user.user_permissions.add(permission(perm))
    client.force_login(user)
    return client


# Who may see and do what.


@pytest.mark.parametrize("name", [LIVE, CLOSE])
def test_anonymous_and_non_staff_go_to_the_login_page(client, django_user_model, live, name):
    anonymous = client.get(reverse(name))
    user = django_user_model.objects.create_user("plain", password="x")
    user.user_permissions.add(permission("djftpd.view_session"))
    client.force_login(user)
    non_staff = client.post(reverse(name), {"action": "user:alice"})

    for response in (anonymous, non_staff):
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))
    assert live.calls == []


def test_staff_without_permission_is_refused(client, django_user_model, live):
    c = staff(django_user_model, client)

    assert c.get(reverse(LIVE)).status_code == 403
    assert c.post(reverse(CLOSE), {"action": "user:alice"}).status_code == 403
    assert live.calls == []


def test_viewing_does_not_allow_closing(client, django_user_model, live):
    live.sessions = [a_session("s1")]
    c = staff(django_user_model, client, "djftpd.view_session")

    page = c.get(reverse(LIVE))
    close = c.post(reverse(CLOSE), {"action": "session:s1"})

    assert page.status_code == 200
    assert "Disconnect" not in page.content.decode()
    assert close.status_code == 403
    assert [path for path, _ in live.calls] == ["/sessions"]


def test_disabling_needs_the_account_permission_too(client, django_user_model, alice, live):
    c = staff(django_user_model, client, "djftpd.view_session", "djftpd.close_session")

    assert "Disable FTP account" not in c.get(reverse(LIVE)).content.decode()
    assert c.post(reverse(CLOSE), {"action": "disable:alice"}).status_code == 403
    assert not FTPAccount.objects.exists()


def test_actions_refuse_get(admin_client, live):
    response = admin_client.get(reverse(CLOSE), {"action": "user:alice"})

    assert response.status_code == 405
    assert [path for path, _ in live.calls] == []


def test_actions_need_the_csrf_token(admin_user, live):
    c = Client(enforce_csrf_checks=True)
    c.force_login(admin_user)

    assert c.post(reverse(CLOSE), {"action": "user:alice"}).status_code == 403
    assert live.calls == []


def test_the_page_is_in_the_admin_index_for_those_who_may_see_it(admin_client):
    assert reverse(LIVE) in admin_client.get(reverse("admin:index")).content.decode()


# The page.


def test_lists_every_sidecars_sessions_and_the_ones_down(admin_client, settings, live, dead_url):
    live.sessions = [
        a_session(
            "s1",
            command="STOR",
            transfer={
                "command": "STOR",
                "direction": "upload",
                "path": "/big.iso",
                "started": "2026-12-01T10:00:01Z",
                "bytes": 3 * 2**20,
                "bytes_per_second": 2**20,
            },
        ),
        a_session("s2", username=None),
        a_session("s3", username="bob", protocol="ftps"),
    ]
    live.page = 2  # two pages
    settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_URLS": [live.url, dead_url]}

    response = admin_client.get(reverse(LIVE))
    html = response.content.decode()

    assert response.status_code == 200
    assert [s["id"] for s in response.context["sessions"]] == ["s1", "s3", "s2"]
    assert "/big.iso" in html
    assert "3.0\xa0MB" in html
    assert "1.0\xa0MB/s" in html
    assert "FTPS" in html
    assert "(not logged in)" in html
    assert f"Sidecar {dead_url} is not answering" in html
    assert '<meta http-equiv="refresh" content="10">' in html
    assert [call for call in live.calls] == [("/sessions", {}), ("/sessions", {"cursor": "2"})]


def test_a_slow_sidecar_is_shown_as_not_answering(admin_client, live, monkeypatch):
    monkeypatch.setattr(sidecar_client, "TIMEOUT", 0.2)
    live.delay = 1.0
    live.sessions = [a_session("s1")]

    started = time.monotonic()
    response = admin_client.get(reverse(LIVE))

    assert response.status_code == 200
    assert time.monotonic() - started < 1.0
    assert "is not answering" in response.content.decode()
    assert response.context["sessions"] == []


def test_answers_not_signed_for_sessions_are_not_believed(admin_client, live):
    live.sessions = [a_session("s1")]
    live.answer_purpose = "ping"

    response = admin_client.get(reverse(LIVE))

    assert response.context["sessions"] == []
    assert "not signed with our secret" in response.content.decode()


def test_no_sidecar_configured(admin_client, settings):
    settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_URLS": []}

    response = admin_client.get(reverse(LIVE))

    assert response.status_code == 200
    assert "No sidecar is configured" in response.content.decode()


def test_refresh_can_be_turned_off(admin_client, live):
    assert "http-equiv" not in admin_client.get(reverse(LIVE), {"refresh": "0"}).content.decode()


# The actions.


def test_disconnect_one_session(admin_client, live):
    live.sessions = [a_session("s1"), a_session("s2")]

    response = admin_client.post(reverse(CLOSE), {"action": "session:s1"}, follow=True)

    assert ("/sessions/close", {"session": "s1"}) in live.calls
    assert [s["id"] for s in response.context["sessions"]] == ["s2"]
    assert "1 session of s1 closed." in response.content.decode()


def test_disconnect_every_session_of_a_user(admin_client, live, dead_url, settings):
    live.sessions = [a_session("s1"), a_session("s2"), a_session("s3", username="bob")]
    settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_URLS": [live.url, dead_url]}

    response = admin_client.post(reverse(CLOSE), {"action": "user:alice"}, follow=True)
    html = response.content.decode()

    assert ("/sessions/close", {"username": "alice"}) in live.calls
    assert [s["id"] for s in response.context["sessions"]] == ["s3"]
    assert "2 sessions of alice closed." in html
    assert f"These sidecars did not answer: {dead_url}" in html


def test_disable_account_purges_then_disconnects(admin_client, alice, live, committed):
    live.sessions = [a_session("s1")]

    with committed():
        admin_client.post(reverse(CLOSE), {"action": "disable:alice"})

    assert FTPAccount.objects.get(user=alice).enabled is False
    assert [c for c in live.calls if c[0] != "/sessions"] == [
        ("/cache/purge", {"username": "alice"}),
        ("/sessions/close", {"username": "alice"}),
    ]


@pytest.mark.parametrize("action", ["", "session:", "nuke:alice", "user:" + "x" * 300])
def test_unknown_actions_do_nothing(admin_client, live, action):
    response = admin_client.post(reverse(CLOSE), {"action": action}, follow=True)

    assert "Unknown action." in response.content.decode()
    assert [path for path, _ in live.calls] == ["/sessions"]


def test_next_only_on_this_site(admin_client, live):
    here = admin_client.post(reverse(CLOSE) + "?next=/admin/auth/user/", {"action": "user:a"})
    away = admin_client.post(reverse(CLOSE) + "?next=https://evil.example/", {"action": "user:a"})

    assert here.url == "/admin/auth/user/"
    assert away.url == reverse(LIVE)


# The dashboard.


def event(n: int, type_: str, when: datetime, username: str = "alice", size: int | None = None):
    return FTPEvent(
        id=f"ev-{n}",
        type=type_,
        time=when,
        session="s",
        username=username,
        client_ip="192.0.2.1",
        bytes=size,
    )


@pytest.fixture
def activity() -> datetime:
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    T = FTPEvent.Type
    FTPEvent.objects.bulk_create(
        [
            event(1, T.LOGIN, now),
            event(2, T.LOGIN, yesterday),
            event(3, T.LOGIN_FAILED, now),
            event(4, T.FILE_RECEIVED, now, size=2048),
            event(5, T.INCOMPLETE_FILE_RECEIVED, now, size=1024),
            event(6, T.FILE_SENT, yesterday, "bob", size=10 * 2**20),
            event(7, T.LOGIN, now - timedelta(days=40)),
            event(8, T.FILE_SENT, now - timedelta(days=40), "carol", size=2**40),
        ]
    )
    return now


def test_dashboard_is_one_query_per_chart(activity, django_assert_num_queries):
    with django_assert_num_queries(3):
        data = dashboard()
        logins, volume = data["charts"]
        top = data["top_users"]

    today = f"{timezone.localtime(activity):%Y-%m-%d}"
    titles = {bar.title for bar in logins.bars}
    assert f"{today} logins: 1" in titles
    assert f"{today} failed logins: 1" in titles
    assert sum(1 for bar in logins.bars if bar.height) == 3  # carol's old login is out
    assert f"{today} uploaded: 3.0 KB" in {bar.title for bar in volume.bars}
    assert [bar.title for bar in top.bars] == ["bob: 10.0 MB", "alice: 3.0 KB"]
    assert len(logins.bars) == 60  # 30 days, two series


def test_changelist_shows_the_charts(admin_client, activity):
    html = admin_client.get(reverse("admin:djftpd_ftpevent_changelist")).content.decode()

    assert html.count('<svg class="ftp-chart"') == 3
    assert "Top users by bytes" in html
    assert 'id="changelist"' in html  # the list is still there, below


def test_empty_dashboard_renders(admin_client):
    html = admin_client.get(reverse("admin:djftpd_ftpevent_changelist")).content.decode()

    assert html.count('<svg class="ftp-chart"') == 2
    assert "No transfers." in html


# The user's page.


def test_user_page_shows_ftp_sessions_and_events(admin_client, alice, live):
    live.sessions = [a_session("s1"), a_session("s9", username="bob")]
    FTPEvent.objects.bulk_create(
        [
            event(i, FTPEvent.Type.LOGIN, datetime(2026, 11, 1, tzinfo=dt_timezone.utc))
            for i in range(25)
        ]
    )

    response = admin_client.get(reverse("admin:auth_user_change", args=[alice.pk]))
    html = response.content.decode()

    assert response.status_code == 200
    assert 'id="ftp-user-panel"' in html
    assert 'data-session="s1"' in html
    assert 'data-session="s9"' not in html
    assert html.count("<td>login</td>") == 20
    # The buttons belong to a form of their own, after the user form: not its default button.
    user_form_end = html.index("</form>", html.index('id="user_form"'))
    assert html.index('form="djftpd-close"') < user_form_end < html.index('<form id="djftpd-close"')
    assert f'action="{reverse(CLOSE)}"' in html[user_form_end:]


def test_user_page_without_ftp_permissions_has_no_ftp_section(
    client, django_user_model, alice, live
):
    c = staff(django_user_model, client, "auth.view_user", "auth.change_user")

    html = c.get(reverse("admin:auth_user_change", args=[alice.pk])).content.decode()

    assert 'id="ftp-user-panel"' not in html
    assert 'id="djftpd-close"' not in html
    assert live.calls == []


def test_disconnect_from_the_user_page_comes_back_to_it(admin_client, alice, live):
    live.sessions = [a_session("s1")]
    user_page = reverse("admin:auth_user_change", args=[alice.pk])

    response = admin_client.post(reverse(CLOSE), {"action": "session:s1", "next": user_page})

    assert response.url == user_page
    assert ("/sessions/close", {"session": "s1"}) in live.calls
