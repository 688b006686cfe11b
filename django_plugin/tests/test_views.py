"""The auth endpoint, status by status (DESIGN.md section 2)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from djftpd.signing import MAX_BODY, PURPOSES, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests import backends
from tests.conftest import ALICE_PASSWORD, assert_unsigned, auth_payload

pytestmark = pytest.mark.django_db

INVALID = {"ok": False, "error": "invalid_credentials"}


def test_valid_login_gets_the_grant(alice, post_auth, assert_signed):
    response = post_auth()

    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "username": "alice",
        "home": "/srv/ftp/alice",
        "perms": "elr",
        "welcome": "Welcome to the Django-FTP Server",
        "quota_bytes": None,
        "max_sessions": None,
    }
    assert_signed(response)


def test_ttl_is_sent_only_when_configured(alice, post_auth, settings):
    settings.DJFTPD = {**settings.DJFTPD, "TTL": 90}

    assert post_auth().json()["ttl"] == 90


def test_wrong_password_and_unknown_user_get_the_same_answer(alice, post_auth, assert_signed):
    wrong_password = post_auth(auth_payload(password="nope"))
    unknown_user = post_auth(auth_payload(username="mallory"))

    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.content == unknown_user.content
    assert wrong_password.json() == INVALID
    assert_signed(wrong_password)
    assert_signed(unknown_user)


def test_inactive_user_is_refused(alice, post_auth):
    alice.is_active = False
    alice.save()

    response = post_auth()

    assert (response.status_code, response.json()) == (401, INVALID)


def test_inactive_user_is_refused_even_by_a_backend_that_allows_inactive_users(
    alice, post_auth, settings
):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.AllowAllUsersModelBackend"]
    alice.is_active = False
    alice.save()

    assert post_auth().status_code == 401


class TestRequirePermission:
    @pytest.fixture(autouse=True)
    def require_permission(self, settings):
        settings.DJFTPD = {**settings.DJFTPD, "REQUIRE_PERMISSION": "auth.view_user"}

    def test_user_without_the_permission_is_refused(self, alice, post_auth):
        response = post_auth()

        assert (response.status_code, response.json()) == (401, INVALID)

    def test_user_with_the_permission_logs_in(self, alice, post_auth):
        alice.user_permissions.add(Permission.objects.get(codename="view_user"))

        assert post_auth().status_code == 200


def test_client_ip_replaces_remote_addr_and_forwarded_headers(alice, post_auth, settings):
    settings.AUTHENTICATION_BACKENDS = [
        "tests.backends.RecordingBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    backends.seen_meta.clear()

    response = post_auth(
        auth_payload(client_ip="::ffff:198.51.100.7"),
        headers={"X-Forwarded-For": "203.0.113.1", "X-Real-IP": "203.0.113.2"},
        HTTP_CLIENT_IP="203.0.113.3",
        REMOTE_ADDR="127.0.0.1",
    )

    assert response.status_code == 200
    [meta] = backends.seen_meta
    assert meta["REMOTE_ADDR"] == "198.51.100.7"
    for header in ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_CLIENT_IP"):
        assert header not in meta


def test_wrong_method_is_405(client):
    response = client.get(reverse("djftpd:auth"))

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == {"ok": False, "error": "method_not_allowed"}
    assert_unsigned(response)


def test_body_over_64_kib_is_413(post_auth):
    body = json.dumps(auth_payload(session="x" * MAX_BODY)).encode()

    response = post_auth(body)

    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
    assert_unsigned(response)


def test_body_of_exactly_64_kib_is_read(alice, post_auth):
    body = json.dumps(auth_payload()).encode()
    body = body[:-1] + b" " * (MAX_BODY - len(body)) + b"}"

    assert len(body) == MAX_BODY
    assert post_auth(body).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="unsigned"),
        pytest.param({TIMESTAMP_HEADER: "", SIGNATURE_HEADER: ""}, id="empty headers"),
        pytest.param({TIMESTAMP_HEADER: "12e3"}, id="malformed timestamp"),
        pytest.param({SIGNATURE_HEADER: "v2=" + "0" * 64}, id="wrong signature"),
        pytest.param({SIGNATURE_HEADER: "v2=é"}, id="non-ascii signature"),
    ],
)
def test_bad_signature_is_403(client, headers, secret):
    body = json.dumps(auth_payload()).encode()
    signed = {**sign(body, secret, purpose="auth"), **headers} if headers else {}

    response = client.post(
        reverse("djftpd:auth"), data=body, content_type="application/json", headers=signed
    )

    assert (response.status_code, response.json()) == (403, {"ok": False, "error": "bad_signature"})
    assert_unsigned(response)


def test_version_1_signature_is_403(alice, client, secret):
    """v2 replaced v1 at once: a request signed the old way is refused."""
    body = json.dumps(auth_payload()).encode()
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()

    response = client.post(
        reverse("djftpd:auth"),
        data=body,
        content_type="application/json",
        headers={TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: f"v1={mac}"},
    )

    assert (response.status_code, response.json()["error"]) == (403, "bad_signature")
    assert_unsigned(response)


@pytest.mark.parametrize("view", ["auth", "events"])
@pytest.mark.parametrize("purpose", PURPOSES)
def test_request_signed_for_another_purpose_is_403(alice, post_signed, view, purpose):
    """A message signed for one endpoint (a purge, a ping, ...) is refused by every other."""
    body = auth_payload() if view == "auth" else {"events": []}

    response = post_signed(f"djftpd:{view}", body, purpose=purpose)

    if purpose == view:
        assert response.status_code == 200
    else:
        assert (response.status_code, response.json()["error"]) == (403, "bad_signature")
        assert_unsigned(response)


def test_other_secret_is_403(alice, post_auth):
    response = post_auth(sign_with="another-secret-0123456789abcdef-0123456789")

    assert (response.status_code, response.json()["error"]) == (403, "bad_signature")


def test_tampered_body_is_403(alice, client, secret):
    body = json.dumps(auth_payload()).encode()
    headers = sign(body, secret, purpose="auth")

    response = client.post(
        reverse("djftpd:auth"),
        data=body.replace(b"alice", b"admin"),
        content_type="application/json",
        headers=headers,
    )

    assert response.status_code == 403


@pytest.mark.parametrize("offset", [-301, 301])
def test_timestamp_beyond_300_s_is_403_stale(alice, post_auth, offset):
    response = post_auth(timestamp=int(time.time()) + offset)

    assert response.status_code == 403
    assert response.json() == {"ok": False, "error": "stale_timestamp"}
    assert_unsigned(response)


@pytest.mark.parametrize("offset", [-290, 290])
def test_timestamp_within_300_s_is_accepted(alice, post_auth, offset):
    assert post_auth(timestamp=int(time.time()) + offset).status_code == 200


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param(b"\xff\xfe{}", "body is not UTF-8", id="not utf-8"),
        pytest.param(b'{"username": ', "body is not valid JSON", id="truncated json"),
        pytest.param(b"[" * 60000, "body is not valid JSON", id="deeply nested"),
        pytest.param(b"1" * 5000, "body is not valid JSON", id="huge number"),
        pytest.param(b'["alice"]', "body must be a JSON object", id="array"),
        pytest.param(b"null", "body must be a JSON object", id="null"),
        pytest.param(
            json.dumps({k: v for k, v in auth_payload().items() if k != "password"}).encode(),
            "missing field 'password'",
            id="missing field",
        ),
        pytest.param(
            json.dumps(auth_payload(username=12345678901234567890)).encode(),
            "field 'username' must be a string",
            id="number as username",
        ),
        pytest.param(
            json.dumps(auth_payload(password=None)).encode(),
            "field 'password' must be a string",
            id="null password",
        ),
        pytest.param(
            json.dumps(auth_payload(client_ip="ftp.example.com")).encode(),
            "field 'client_ip' must be an IP address",
            id="hostname as client_ip",
        ),
        pytest.param(
            json.dumps(auth_payload(client_ip=3232235521)).encode(),
            "field 'client_ip' must be an IP address",
            id="integer as client_ip",
        ),
        pytest.param(
            json.dumps(auth_payload(protocol="scp")).encode(),
            "field 'protocol' must be one of 'ftp', 'ftps', 'sftp'",
            id="unknown protocol",
        ),
        pytest.param(
            b'{"username": "\\ud800", "password": "p", "client_ip": "192.0.2.1",'
            b' "protocol": "ftp", "session": "s"}',
            "field 'username' must be valid Unicode text",
            id="lone surrogate",
        ),
    ],
)
def test_malformed_body_is_400(post_auth, assert_signed, body, detail):
    response = post_auth(body)

    assert response.status_code == 400
    assert response.json() == {"ok": False, "error": "bad_request", "detail": detail}
    assert_signed(response)


@pytest.mark.parametrize("field", ["username", "password"])
def test_null_byte_in_credentials_is_refused_not_an_error(alice, post_auth, field):
    response = post_auth(auth_payload(**{field: "alice\x00"}))

    assert (response.status_code, response.json()) == (401, INVALID)


def test_unsafe_username_for_the_home_template_is_refused(django_user_model, post_auth):
    django_user_model.objects.create_user("..", password=ALICE_PASSWORD)

    response = post_auth(auth_payload(username=".."))

    assert (response.status_code, response.json()) == (401, INVALID)


def test_extra_fields_are_ignored(alice, post_auth):
    assert post_auth(auth_payload(future_field=[1, 2])).status_code == 200


def test_view_is_csrf_exempt(alice, secret):
    from django.test import Client

    body = json.dumps(auth_payload()).encode()
    response = Client(enforce_csrf_checks=True).post(
        reverse("djftpd:auth"),
        data=body,
        content_type="application/json",
        headers=sign(body, secret, purpose="auth"),
    )

    assert response.status_code == 200


def test_legacy_settings_shape_the_grant(django_user_model, post_auth, settings, set_legacy):
    set_legacy("get_ftp_home_dir", lambda username: f"/srv/ftp/from-0.3/{username}")
    set_legacy("read_perms", "elr")
    set_legacy("write_perms", "adfmw")
    settings.FTP_WELCOME_MSG = "Hello from djftpd 0.3"
    django_user_model.objects.create_superuser("root", password=ALICE_PASSWORD)
    django_user_model.objects.create_user("bob", password=ALICE_PASSWORD)

    root = post_auth(auth_payload(username="root")).json()
    bob = post_auth(auth_payload(username="bob")).json()

    assert (root["home"], root["perms"], root["welcome"]) == (
        "/srv/ftp/from-0.3/root",
        "elradfmw",
        "Hello from djftpd 0.3",
    )
    assert (bob["home"], bob["perms"]) == ("/srv/ftp/from-0.3/bob", "elr")
