"""django-axes counts FTP logins like web logins, by the FTP client's address.

Run with ``pytest --ds tests.settings_axes tests/axes`` (nox and ``make test`` do): axes must
be installed before Django starts.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied

from tests.conftest import ALICE_PASSWORD, auth_payload

if "axes" not in django_settings.INSTALLED_APPS:
    pytest.skip("needs --ds tests.settings_axes", allow_module_level=True)

from axes.models import AccessAttempt
from axes.signals import user_locked_out

pytestmark = pytest.mark.django_db

INVALID = {"ok": False, "error": "invalid_credentials"}
FTP_CLIENT = "203.0.113.7"
SIDECAR = "127.0.0.1"
FORGED = "198.51.100.66"


@pytest.fixture(
    params=["axes middleware", "no axes middleware", "axes attributes set before the view"]
)
def middleware(request: pytest.FixtureRequest, settings: Any) -> str:
    """The auth view works with axes whether its middleware runs, does not, or computed the
    ``axes_*`` request attributes before the view (as axes < 6 did)."""
    base = [m for m in settings.MIDDLEWARE if not m.startswith("axes.")]
    if request.param == "no axes middleware":
        settings.MIDDLEWARE = base
    elif request.param == "axes attributes set before the view":
        settings.MIDDLEWARE = [
            "tests.axes.middleware.EarlyAxesAttributesMiddleware",
            *base,
            "axes.middleware.AxesMiddleware",
        ]
    return request.param


@pytest.fixture
def login(post_auth: Any, assert_signed: Any) -> Any:
    """Log alice in as the sidecar does for an FTP client at ``client_ip``: from 127.0.0.1,
    with an X-Forwarded-For that must be ignored. Every answer must be signed."""

    def attempt(password: str, client_ip: str = FTP_CLIENT) -> Any:
        response = post_auth(
            auth_payload(password=password, client_ip=client_ip),
            headers={"X-Forwarded-For": FORGED},
            REMOTE_ADDR=SIDECAR,
        )
        assert_signed(response)
        return response

    return attempt


@pytest.fixture
def lockouts() -> Any:
    seen: list[dict[str, Any]] = []

    def record(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    user_locked_out.connect(record)
    yield seen
    user_locked_out.disconnect(record)


def test_ten_wrong_passwords_lock_the_ftp_client_out(alice, login, lockouts, middleware):
    for _ in range(10):
        response = login("wrong")
        assert (response.status_code, response.json()) == (401, INVALID)

    [attempt] = AccessAttempt.objects.all()
    assert (attempt.ip_address, attempt.username, attempt.failures_since_start) == (
        FTP_CLIENT,
        "alice",
        10,
    )
    assert attempt.path_info == "/ftp/auth/"
    assert "wrong" not in attempt.post_data
    assert [(event["username"], event["ip_address"]) for event in lockouts] == [
        ("alice", FTP_CLIENT)
    ]

    # Locked out: the right password gets the very same answer, never axes' 429 or a 403.
    response = login(ALICE_PASSWORD)
    assert (response.status_code, response.json()) == (401, INVALID)


def test_nine_wrong_passwords_do_not(alice, login, middleware):
    for _ in range(9):
        login("wrong")

    assert login(ALICE_PASSWORD).status_code == 200


def test_the_lockout_is_of_the_ftp_client_address_not_the_sidecars(alice, login, middleware):
    for _ in range(10):
        login("wrong")

    assert login(ALICE_PASSWORD).status_code == 401
    assert login(ALICE_PASSWORD, client_ip="192.0.2.55").status_code == 200
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {FTP_CLIENT}


def test_permission_denied_outside_the_backends_is_a_401(alice, login):
    def deny(sender: Any, **kwargs: Any) -> None:
        raise PermissionDenied("locked")

    user_login_failed.connect(deny)
    try:
        response = login("wrong")
    finally:
        user_login_failed.disconnect(deny)

    assert (response.status_code, response.json()) == (401, INVALID)


def test_lockout_by_username_locks_the_account_from_every_address(alice, login, settings):
    settings.AXES_LOCKOUT_PARAMETERS = ["username"]
    for _ in range(10):
        login("wrong")

    assert login(ALICE_PASSWORD, client_ip="192.0.2.55").status_code == 401
