"""``manage.py djftpd_check``: djftpd's system checks, then a signed ping to each sidecar,
against real local HTTP servers that answer as the sidecar's ``POST /ping`` does."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from djftpd.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, sign, verify

OTHER_SECRET = "another-secret-0123456789abcdef-01234"


@dataclass
class PingServer:
    """The sidecar's /ping: 403 unless signed with ``secret``, else a signed ``{"ok":true}``
    (signed with ``answer_secret``, ``secret`` by default); ``status`` forces an error."""

    secret: str
    answer_secret: str | None = None
    answer_timestamp: int | None = None
    answer_purpose: str = "ping"
    status: int | None = None
    storage: str | None = None  # named in the answer, as the sidecar does
    url: str = ""
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)


@pytest.fixture
def start_server() -> Iterator[Callable[..., PingServer]]:
    servers: list[ThreadingHTTPServer] = []

    def start(secret: str, **kwargs: Any) -> PingServer:
        fake = PingServer(secret, **kwargs)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests.append((self.command, self.path, body))
                request_signature = self.headers.get(SIGNATURE_HEADER, "")
                if fake.status is not None:
                    return self.answer(fake.status, b'{"ok":false}', {})
                try:
                    verify(
                        body,
                        self.headers.get(TIMESTAMP_HEADER),
                        request_signature,
                        fake.secret,
                        purpose="ping",
                    )
                except SignatureError as exc:
                    error = json.dumps({"ok": False, "error": exc.code}).encode()
                    return self.answer(403, error, {})
                answer = b'{"ok":true}\n'
                if fake.storage is not None:
                    answer = json.dumps({"ok": True, "storage": fake.storage}).encode()
                headers = sign(
                    answer,
                    fake.answer_secret or fake.secret,
                    fake.answer_timestamp,
                    purpose=fake.answer_purpose,
                    request_signature=request_signature,
                )
                return self.answer(200, answer, headers)

            def answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        fake.url = f"http://127.0.0.1:{server.server_address[1]}/"
        return fake

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def run(*args: str) -> tuple[str, str, CommandError | None]:
    out, err = StringIO(), StringIO()
    try:
        call_command("djftpd_check", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


@pytest.fixture
def urls(settings: Any) -> Callable[..., None]:
    def set_urls(*servers: PingServer | str) -> None:
        settings.DJFTPD = {
            **settings.DJFTPD,
            "SIDECAR_URLS": [s if isinstance(s, str) else s.url for s in servers],
        }

    return set_urls


def test_sidecar_sharing_the_secret_is_ok(start_server, urls, secret):
    server = start_server(secret)
    urls(server)

    out, err, error = run()

    assert error is None, err
    assert "System checks of djftpd: no errors." in out
    assert f"{server.url}ping: ok (the sidecar shares our secret)" in out
    [(method, path, body)] = server.requests
    assert (method, path, body) == ("POST", "/ping", b"{}")


def test_other_secret_is_a_secret_mismatch_and_exit_code_1(start_server, urls):
    server = start_server(OTHER_SECRET)
    urls(server)

    _, err, error = run()

    assert error is not None
    assert error.returncode == 1
    assert f"{server.url}ping: secret mismatch (the sidecar refused our signature (403)" in err


def test_each_url_is_reported(start_server, urls, secret):
    good, bad = start_server(secret), start_server(OTHER_SECRET)
    urls(good, bad.url.rstrip("/"), "http://127.0.0.1:9/")

    out, err, error = run()

    assert error is not None
    assert str(error) == "djftpd_check: 2 problem(s) found."
    assert f"{good.url}ping: ok" in out
    assert f"{bad.url}ping: secret mismatch" in err
    assert "http://127.0.0.1:9/ping: unreachable (" in err
    assert "Connection refused" in err


def test_urls_given_replace_the_settings(start_server, urls, secret):
    server = start_server(secret)
    urls("http://127.0.0.1:9/")

    _, err, error = run(server.url)

    assert error is None, err
    assert len(server.requests) == 1


def test_answer_not_signed_with_our_secret_fails(start_server, urls, secret):
    urls(start_server(secret, answer_secret=OTHER_SECRET))

    _, err, error = run()

    assert error is not None
    assert "ping: bad answer (the answer is not signed with our secret" in err


@pytest.mark.parametrize("purpose", ["cache-purge", "auth", "sessions"])
def test_answer_signed_for_another_purpose_fails(start_server, urls, secret, purpose):
    """Only a ping answer passes: a genuine answer of another kind is not one."""
    urls(start_server(secret, answer_purpose=purpose))

    _, err, error = run()

    assert error is not None
    assert "ping: bad answer (the answer is not signed with our secret" in err


def test_stale_answer_is_a_clock_problem(start_server, urls, secret):
    urls(start_server(secret, answer_timestamp=1))

    _, err, error = run()

    assert error is not None
    assert "ping: clocks out of sync" in err


@pytest.mark.parametrize(
    ("status", "expected"),
    [(404, "ping: error (HTTP 404 (not a djftpd ops listener"), (500, "ping: error (HTTP 500)")],
)
def test_http_errors(start_server, urls, secret, status, expected):
    urls(start_server(secret, status=status))

    _, err, error = run()

    assert error is not None
    assert expected in err


def test_stale_request_is_reported_as_clock_skew(start_server, urls, secret, monkeypatch):
    urls(start_server(secret))
    # Our clock in 1970: the signature is right, its age is not (the sidecar's 403).
    monkeypatch.setattr(
        "djftpd.sidecar_client.sign", lambda body, key, purpose: sign(body, key, 1, purpose=purpose)
    )

    _, err, error = run()

    assert error is not None
    assert "clocks out of sync (the sidecar says our clock is off" in err


def test_failing_system_check_fails_but_still_pings(start_server, urls, settings):
    short = "too-short"
    server = start_server(short)
    settings.DJFTPD = {"SECRET": short, "SIDECAR_URLS": [server.url]}

    out, err, error = run()

    assert error is not None
    assert "djftpd.E002" in err
    assert f"{server.url}ping: ok" in out


def test_missing_secret(urls, settings):
    settings.DJFTPD = {"SIDECAR_URLS": ["http://127.0.0.1:9/"]}

    _, err, error = run()

    assert error is not None
    assert "djftpd.E001" in err
    assert "Cannot ping the sidecars" in err


def test_without_sidecar_urls_the_local_sidecar_is_pinged(start_server, settings, secret):
    server = start_server(secret)
    port = server.url.rsplit(":", 1)[1].rstrip("/")
    settings.DJFTPD = {**settings.DJFTPD, "OPS_LISTEN": f"0.0.0.0:{port}"}

    out, err, error = run()

    assert error is None, err
    assert f"{server.url}ping: ok" in out


def test_empty_sidecar_urls_is_a_warning_only(settings):
    settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_URLS": []}

    out, err, error = run()

    assert error is None, err
    assert "No sidecar to ping" in out


def test_sidecar_storing_elsewhere_is_a_storage_mismatch(start_server, urls, secret, settings):
    server = start_server(secret, storage="s3://media/ftp")
    urls(server)

    _, err, error = run()

    assert error is not None
    assert error.returncode == 1
    assert "storage mismatch (the sidecar stores homes in 's3://media/ftp'" in err


def test_sidecar_storing_where_we_say_is_ok(start_server, urls, secret, settings):
    server = start_server(secret, storage="s3://media/ftp")
    urls(server)
    settings.DJFTPD = {**settings.DJFTPD, "STORAGE": "s3://media/ftp/"}

    out, err, error = run()

    assert error is None, err
    assert f"{server.url}ping: ok" in out


def test_a_django_url_the_sidecar_cannot_use_fails_in_words(settings):
    settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_URLS": []}
    settings.ALLOWED_HOSTS = ["www.example.com"]

    _, err, exc = run()

    assert exc is not None
    assert exc.returncode == 1
    assert "Django URL: The sidecar reaches Django at http://127.0.0.1:8000/ftp/" in err
    assert "host '127.0.0.1' is not in ALLOWED_HOSTS: every FTP login would get 400" in err


def test_a_usable_django_url_is_reported(settings):
    settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_URLS": []}

    out, _, exc = run()

    assert exc is None
    assert "Django URL http://127.0.0.1:8000/ftp/: host allowed, not redirected." in out
