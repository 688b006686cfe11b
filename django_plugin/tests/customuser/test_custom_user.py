"""djftpd with a custom user model whose login name is the email address (no ``username``
field, ``is_active`` not a column) and no Django ``UserAdmin``.

Run with ``pytest --ds tests.settings_custom_user tests/customuser`` (nox and ``make test``
do): ``AUTH_USER_MODEL`` is fixed when Django starts.
"""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse

from djftpd.admin import FTPAccountAdmin, add_inline_to_user_admin
from djftpd.models import FTPAccount, FTPEvent
from djftpd.signals import ftp_file_received
from tests.conftest import ALICE_PASSWORD, auth_payload, purges

if django_settings.AUTH_USER_MODEL != "customuser.User":
    pytest.skip("needs --ds tests.settings_custom_user", allow_module_level=True)

pytestmark = pytest.mark.django_db

EMAIL = "alice@example.com"
INVALID = {"ok": False, "error": "invalid_credentials"}


@pytest.fixture
def alice() -> Any:
    return get_user_model().objects.create_user(EMAIL, password=ALICE_PASSWORD)


def login(post_auth: Any, **overrides: Any) -> Any:
    return post_auth(auth_payload(username=EMAIL, **overrides))


def test_the_user_model_is_the_custom_one():
    User = get_user_model()
    assert (User._meta.label, User.USERNAME_FIELD) == ("customuser.User", "email")
    assert "username" not in {f.name for f in User._meta.get_fields()}
    assert FTPAccount._meta.get_field("user").related_model is User


def test_login_by_email(alice, post_auth, assert_signed):
    response = login(post_auth)

    assert response.status_code == 200
    assert response.json()["username"] == EMAIL
    assert response.json()["home"] == f"/srv/ftp/{EMAIL}"
    assert_signed(response)
    assert login(post_auth, password="wrong").json() == INVALID
    assert post_auth(auth_payload(username="alice")).json() == INVALID


def test_ftp_account_of_a_custom_user(alice, post_auth):
    FTPAccount.objects.create(user=alice, perms="elradfmw", home_dir="/srv/ftp/shared")

    grant = login(post_auth).json()
    assert (grant["perms"], grant["home"]) == ("elradfmw", "/srv/ftp/shared")
    assert alice.ftp_account.perms == "elradfmw"

    FTPAccount.objects.filter(user=alice).update(enabled=False)
    assert (login(post_auth).status_code, login(post_auth).json()) == (401, INVALID)


def test_require_permission_of_a_custom_user(alice, post_auth, settings):
    settings.DJFTPD = {**settings.DJFTPD, "REQUIRE_PERMISSION": "djftpd.use_ftp"}
    assert login(post_auth).status_code == 401

    group = Group.objects.create(name="ftp")
    group.permissions.add(Permission.objects.get(codename="use_ftp"))
    alice.groups.add(group)

    assert login(post_auth).status_code == 200


def test_email_and_password_changes_purge_by_email(alice, sidecar, sidecar_urls, committed):
    with committed():
        alice.email = "alicia@example.com"
        alice.save()
    with committed():
        alice.set_password("new")
        alice.save()
    with committed():
        alice.full_name = "Alice"  # not a watched field
        alice.save()

    names = [body["username"] for path, body in purges(sidecar) if path.startswith("/a/")]
    assert names == [EMAIL, "alicia@example.com", "alicia@example.com"]


def test_account_groups_and_delete_purge_by_email(alice, sidecar, sidecar_urls, committed):
    with committed():
        FTPAccount.objects.create(user=alice)
        alice.groups.add(Group.objects.create(name="ftp"))
        alice.delete()

    assert {body["username"] for _, body in purges(sidecar)} == {EMAIL}


def test_event_signals_and_log_find_the_user_by_email(
    alice, post_signed, django_capture_on_commit_callbacks
):
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    event = {
        "id": "ev-1", "type": "file_received", "time": "2026-11-25T15:04:05Z", "session": "s-1",
        "username": EMAIL, "client_ip": "192.0.2.10", "path": "/a.txt", "to_path": None,
        "bytes": 13, "duration_ms": 7,
    }  # fmt: skip
    ftp_file_received.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = post_signed("djftpd:events", {"events": [event]})
    finally:
        ftp_file_received.disconnect(receiver)

    assert response.status_code == 200
    [kwargs] = seen
    assert (kwargs["username"], kwargs["user"]) == (EMAIL, alice)
    assert FTPEvent.objects.get(id="ev-1").user == alice


def test_no_inline_without_djangos_user_admin():
    User = get_user_model()
    site = admin.AdminSite(name="custom")
    site.register(User, admin.ModelAdmin)

    assert add_inline_to_user_admin(site) is False
    assert type(site._registry[User]) is admin.ModelAdmin
    assert add_inline_to_user_admin(admin.AdminSite(name="empty")) is False
    assert User not in admin.site._registry  # djftpd registered nothing for it


def test_ftp_account_admin_searches_by_email(alice, client):
    get_user_model().objects.create_superuser("root@example.com", password="x")
    FTPAccount.objects.create(user=alice, perms="elr")
    assert client.login(username="root@example.com", password="x")
    assert isinstance(admin.site._registry[FTPAccount], FTPAccountAdmin)

    response = client.get(reverse("admin:djftpd_ftpaccount_changelist"), {"q": "alice@"})

    assert response.status_code == 200
    assert EMAIL in response.content.decode()
    response = client.get(reverse("admin:djftpd_ftpaccount_change", args=[alice.ftp_account.pk]))
    assert response.status_code == 200


def test_account_command_finds_the_user_by_email(alice):
    out = StringIO()

    call_command("djftpd_account", "create", EMAIL, "--perms", "elr", verbosity=0)
    call_command("djftpd_account", "list", "--format", "json", stdout=out)

    assert FTPAccount.objects.get(user=alice).perms == "elr"
    assert [row["username"] for row in json.loads(out.getvalue())] == [EMAIL]
