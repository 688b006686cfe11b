"""FTPAccount: per-user overrides, the enabled switch, limits, use_ftp (DESIGN.md section 5)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.urls import reverse

from djftpd.admin import FTPAccountInline, add_inline_to_user_admin
from djftpd.models import FTPAccount
from djftpd.policy import resolve_home, resolve_perms, resolve_welcome

pytestmark = pytest.mark.django_db

INVALID = {"ok": False, "error": "invalid_credentials"}


@pytest.fixture
def djftpd(settings):
    def update(**values):
        settings.DJFTPD = {**settings.DJFTPD, **values}

    return update


class TestPrecedence:
    def test_account_beats_djftpd_settings(self, alice, djftpd):
        djftpd(PERMS="elr", HOME_DIR="/srv/ftp/site/{username}", WELCOME="Site")
        FTPAccount.objects.create(
            user=alice, perms="elrw", home_dir="/srv/ftp/own", welcome="Hello alice"
        )

        assert resolve_perms(alice) == "elrw"
        assert resolve_home(alice) == "/srv/ftp/own"
        assert resolve_welcome(alice) == "Hello alice"

    def test_account_beats_legacy_settings(self, alice, set_legacy):
        set_legacy("read_perms", "e")
        set_legacy("get_ftp_home_dir", lambda username: "/srv/ftp/legacy")
        FTPAccount.objects.create(user=alice, perms="el", home_dir="/srv/ftp/own")

        assert (resolve_perms(alice), resolve_home(alice)) == ("el", "/srv/ftp/own")

    def test_blank_account_fields_fall_back_to_the_settings(self, alice, djftpd):
        djftpd(PERMS="elrw", WELCOME="Site")
        FTPAccount.objects.create(user=alice)

        assert resolve_perms(alice) == "elrw"
        assert resolve_home(alice) == "/srv/ftp/alice"
        assert resolve_welcome(alice) == "Site"

    def test_account_home_outside_home_root_is_refused(self, alice):
        FTPAccount.objects.create(user=alice, home_dir="/etc")

        with pytest.raises(Exception, match="outside"):
            resolve_home(alice)


class TestAuthView:
    def test_grant_carries_the_account_and_its_limits(self, alice, post_auth):
        FTPAccount.objects.create(
            user=alice, perms="elrw", quota_bytes=10 * 2**30, max_sessions=2, welcome="Hi"
        )

        grant = post_auth().json()

        assert (grant["perms"], grant["welcome"]) == ("elrw", "Hi")
        assert (grant["quota_bytes"], grant["max_sessions"]) == (10 * 2**30, 2)

    def test_disabled_account_is_refused_like_a_wrong_password(self, alice, post_auth):
        FTPAccount.objects.create(user=alice, enabled=False)

        response = post_auth()

        assert (response.status_code, response.json()) == (401, INVALID)

    def test_disabled_account_is_refused_even_with_the_permission(self, alice, post_auth, djftpd):
        djftpd(REQUIRE_PERMISSION="djftpd.use_ftp")
        alice.user_permissions.add(Permission.objects.get(codename="use_ftp"))
        FTPAccount.objects.create(user=alice, enabled=False)

        assert post_auth().status_code == 401

    def test_use_ftp_permission(self, alice, post_auth, djftpd):
        djftpd(REQUIRE_PERMISSION="djftpd.use_ftp")

        refused = post_auth()
        alice.user_permissions.add(Permission.objects.get(codename="use_ftp"))
        allowed = post_auth()

        assert (refused.status_code, allowed.status_code) == (401, 200)


class TestValidation:
    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"perms": "elrX"}, "perms", "Unknown permission letters 'X'."),
            ({"home_dir": "ftp/alice"}, "home_dir", "Must be an absolute path."),
            ({"home_dir": "/etc/a"}, "home_dir", 'Must be inside /srv/ftp (DJFTPD["HOME_ROOT"]).'),
        ],
    )
    def test_invalid_fields(self, alice, fields, field, message):
        account = FTPAccount(user=alice, **fields)

        with pytest.raises(ValidationError) as excinfo:
            account.full_clean()

        assert excinfo.value.message_dict[field] == [message]

    def test_valid_account(self, alice):
        FTPAccount(user=alice, perms="elradfmwMT", home_dir="/srv/ftp/a").full_clean()


class TestAdmin:
    def test_account_changelist_and_search(self, admin_client, alice):
        FTPAccount.objects.create(user=alice, perms="elr")
        url = reverse("admin:djftpd_ftpaccount_changelist")

        found = admin_client.get(url, {"q": "alice"})

        assert found.status_code == 200
        assert [a.user for a in found.context["cl"].result_list] == [alice]

    def test_inline_on_the_default_user_admin(self, admin_client, alice):
        page = admin_client.get(reverse("admin:auth_user_change", args=[alice.pk]))

        assert page.status_code == 200
        assert "ftp_account-TOTAL_FORMS" in page.content.decode()

    @pytest.mark.parametrize("enabled", [True, False])
    def test_inline_can_be_turned_off(self, djftpd, enabled):
        djftpd(USER_ADMIN_INLINE=enabled)
        site = admin.AdminSite(name="inline-test")
        site.register(get_user_model(), UserAdmin)

        added = add_inline_to_user_admin(site)

        assert added is enabled
        assert (FTPAccountInline in site._registry[get_user_model()].inlines) is enabled

    def test_inline_saves_an_account(self, admin_client, alice):
        url = reverse("admin:auth_user_change", args=[alice.pk])
        form = page_form(admin_client.get(url))
        form.update({"ftp_account-TOTAL_FORMS": "1", "ftp_account-0-enabled": "on",
                     "ftp_account-0-perms": "elr", "ftp_account-0-max_sessions": "3"})  # fmt: skip

        response = admin_client.post(url, form)

        assert response.status_code == 302, response.context["errors"]
        assert FTPAccount.objects.get(user=alice).max_sessions == 3


def page_form(page) -> dict[str, str]:
    """The initial data of the admin change form on ``page``, as POST data."""
    adminform = page.context["adminform"].form
    data = {}
    for name, field in adminform.fields.items():
        value = adminform.initial.get(name, field.initial)
        if value is None or name in ("password",):
            continue
        if isinstance(value, list | tuple):
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = str(value)
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = str(management.initial.get(name, 0))
    data["last_login_0"] = data["last_login_1"] = ""
    data["date_joined_0"], data["date_joined_1"] = "2026-01-01", "00:00:00"
    return data
