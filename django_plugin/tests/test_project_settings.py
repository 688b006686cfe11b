"""The machine endpoints under common project settings (issue 14): they answer the sidecar
as they do in a bare project, never a redirect or a 500."""

from __future__ import annotations

import django
import pytest

pytestmark = pytest.mark.django_db

EVENT = {
    "id": "ev-1",
    "type": "connect",
    "time": "2026-11-25T15:04:05Z",
    "session": "s-1",
    "username": None,
    "client_ip": "192.0.2.10",
    "path": None,
    "to_path": None,
    "bytes": None,
    "duration_ms": None,
}


@pytest.mark.skipif(django.VERSION < (5, 1), reason="LoginRequiredMiddleware is Django 5.1+")
@pytest.mark.parametrize(
    ("url_name", "body", "expected"),
    [
        ("djftpd:auth", None, 200),
        ("djftpd:events", {"events": [EVENT]}, 200),
    ],
    ids=["auth", "events"],
)
def test_login_required_middleware_lets_the_sidecar_in(
    alice, settings, post_signed, post_auth, assert_signed, url_name, body, expected
):
    """Issue 14 item 2: with LoginRequiredMiddleware both endpoints answered 302 to the
    login page; the sidecar never has a session, its requests are signed instead."""
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]

    response = post_auth() if body is None else post_signed(url_name, body)

    assert response.status_code == expected
    assert_signed(response)
