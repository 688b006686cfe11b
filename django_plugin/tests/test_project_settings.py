"""The machine endpoints under common project settings (issue 14): they answer the sidecar
as they do in a bare project, never a redirect or a 500."""

from __future__ import annotations

import logging

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


@pytest.mark.parametrize(
    ("djftpd", "reason"),
    [
        ({}, 'Set DJFTPD["HOME_ROOT"]'),
        ({"HOME_DIR": lambda user: "ftp/alice"}, "must give an absolute path"),
        ({"HOME_ROOT": "/srv/ftp", "HOME_DIR": "/etc/{username}"}, "outside"),
        ({"HOME_DIR": "/srv/ftp/{user}"}, "not a valid"),
        ({"HOME_ROOT": "srv/ftp"}, "absolute path"),
    ],
    ids=["no home source", "relative home", "outside HOME_ROOT", "bad template", "relative root"],
)
def test_a_home_the_settings_cannot_give_is_a_401_and_an_error_log(
    alice, settings, post_auth, assert_signed, caplog, djftpd, reason
):
    """Issue 14 item 3: without any home source every login was a 500 (an HTML page the
    sidecar cannot verify). A configuration fault is the site's, logged at ERROR with what
    to fix; the FTP client gets the one refusal."""
    settings.DJFTPD = {"SECRET": settings.DJFTPD["SECRET"], **djftpd}

    with caplog.at_level(logging.ERROR, logger="djftpd"):
        response = post_auth()

    assert (response.status_code, response.json()) == (
        401, {"ok": False, "error": "invalid_credentials"},
    )  # fmt: skip
    assert_signed(response)
    assert any(reason in record.getMessage() for record in caplog.records), caplog.text
