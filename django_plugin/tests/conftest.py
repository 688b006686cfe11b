"""Fixtures shared by djftpd's tests: signed calls to the auth view, legacy settings, and a fake
sidecar ops listener."""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import LazySettings
from django.test import Client
from django.urls import reverse

from djftpd.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify

ALICE_PASSWORD = "alice-pässword"


def auth_payload(**overrides: Any) -> dict[str, Any]:
    """A valid auth request body for alice, with ``overrides`` applied."""
    payload = {
        "username": "alice",
        "password": ALICE_PASSWORD,
        "client_ip": "192.0.2.10",
        "protocol": "ftp",
        "session": "s-1",
    }
    payload.update(overrides)
    return payload


def assert_unsigned(response: Any) -> None:
    """An answer to a request that did not verify carries no signature: signing it would hand
    signed messages to anyone who asks."""
    assert TIMESTAMP_HEADER not in response.headers
    assert SIGNATURE_HEADER not in response.headers


@pytest.fixture
def secret(settings: LazySettings) -> str:
    return settings.DJFTPD["SECRET"]


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice", password=ALICE_PASSWORD)


@pytest.fixture
def post_signed(client: Client, secret: str) -> Callable[..., Any]:
    """POST a body to a djftpd view, signed with the test secret unless told otherwise.

    ``url_name`` is the view's name (``"djftpd:auth"``, also the signature's purpose unless
    ``purpose`` says another); ``body`` is a dict (sent as JSON) or raw bytes; ``sign_with``
    another secret, ``timestamp`` a fixed one, ``headers`` extra or replacing headers
    (``HTTP_*`` style keys via ``extra``).
    """

    def post(
        url_name: str,
        body: dict[str, Any] | bytes,
        *,
        sign_with: str | None = None,
        timestamp: int | str | None = None,
        headers: dict[str, str] | None = None,
        purpose: str | None = None,
        **extra: Any,
    ) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        signed = sign(
            raw, sign_with or secret, timestamp, purpose=purpose or url_name.split(":")[-1]
        )
        all_headers = {**signed, **(headers or {})}
        return client.post(
            reverse(url_name),
            data=raw,
            content_type="application/json",
            headers=all_headers,
            **extra,
        )

    return post


@pytest.fixture
def post_auth(post_signed: Callable[..., Any]) -> Callable[..., Any]:
    """POST a body (default: :func:`auth_payload`) to the auth view, like ``post_signed``."""

    def post(body: dict[str, Any] | bytes | None = None, **kwargs: Any) -> Any:
        return post_signed("djftpd:auth", auth_payload() if body is None else body, **kwargs)

    return post


@pytest.fixture
def assert_signed(secret: str) -> Callable[[Any], None]:
    """Assert that a response carries valid djftpd signature headers over its body: the
    answer, for its view's purpose (the URL name), to the request it answers."""

    def check(response: Any) -> None:
        verify(
            response.content,
            response.headers.get(TIMESTAMP_HEADER),
            response.headers.get(SIGNATURE_HEADER),
            secret,
            purpose=response.resolver_match.url_name,
            request_signature=response.request.get("HTTP_X_DJFTPD_SIGNATURE", ""),
        )

    return check


@pytest.fixture(params=["module attribute", "uppercase setting"])
def set_legacy(
    request: pytest.FixtureRequest, settings: LazySettings, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, Any], None]:
    """Set a lowercase djftpd 0.3 setting (``read_perms``) in each of its two spellings: as an
    attribute of the settings module, which Django does not copy, or UPPERCASE in settings."""
    module = importlib.import_module(settings.SETTINGS_MODULE)

    def set_value(name: str, value: Any) -> None:
        if request.param == "module attribute":
            monkeypatch.setattr(module, name, value, raising=False)
        else:
            setattr(settings, name.upper(), value)

    return set_value


@dataclass
class FakeSidecar:
    """An ops listener: records each request as (path, body), answers ``status``."""

    url: str = ""
    status: int = 200
    delay: float = 0.0
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def sidecar() -> Iterator[FakeSidecar]:
    fake = FakeSidecar()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            fake.headers.append(dict(self.headers))
            fake.requests.append((self.path, {"raw": body, **json.loads(body)}))
            time.sleep(fake.delay)
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def sidecar_urls(settings, sidecar):
    """Two sidecars, told apart by their base path, both served by ``sidecar``."""
    settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_URLS": [sidecar.url + "a/", sidecar.url + "b"]}


def purges(sidecar: FakeSidecar) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, {k: v for k, v in body.items() if k != "raw"}) for path, body in sidecar.requests
    ]


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a block as if its transaction committed: the on-commit purges are sent."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
