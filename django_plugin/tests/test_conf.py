"""Settings: the DJFTPD dict, djftpd 0.3's legacy names, and their precedence (DESIGN.md §5)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from djftpd.conf import (
    DEFAULT_WELCOME,
    app_settings,
    legacy_settings_in_use,
    resolve_listen,
    resolve_ttl,
)
from djftpd.policy import NoSafeHome, resolve_home, resolve_perms, resolve_welcome

User = get_user_model()


@pytest.fixture
def alice():
    return User(username="alice")


@pytest.fixture
def root():
    return User(username="root", is_superuser=True)


@pytest.fixture
def djftpd(settings):
    """Update some DJFTPD keys, keeping the others of the test settings."""

    def update(**values):
        settings.DJFTPD = {**settings.DJFTPD, **values}

    return update


class TestAppSettings:
    def test_follows_override_settings(self):
        assert app_settings.PASSIVE_PORTS == "50000-50099"
        with override_settings(DJFTPD={"PASSIVE_PORTS": "40000-40009"}):
            assert app_settings.PASSIVE_PORTS == "40000-40009"
        assert app_settings.PASSIVE_PORTS == "50000-50099"

    def test_follows_the_settings_fixture(self, djftpd):
        djftpd(DJANGO_URL="http://django:8000/ftp/")

        assert app_settings.DJANGO_URL == "http://django:8000/ftp/"

    def test_unknown_name_is_an_attribute_error(self):
        with pytest.raises(AttributeError, match="Invalid djftpd setting: 'NOPE'"):
            app_settings.NOPE  # noqa: B018

    def test_djftpd_must_be_a_dict(self, settings):
        settings.DJFTPD = ["SECRET"]

        with pytest.raises(ImproperlyConfigured, match="must be a dict"):
            app_settings.SECRET  # noqa: B018


class TestHome:
    def test_default_is_home_root_and_username(self, alice):
        assert resolve_home(alice) == "/srv/ftp/alice"

    def test_template(self, alice, djftpd):
        djftpd(HOME_DIR="/srv/ftp/users/{username}/files")

        assert resolve_home(alice) == "/srv/ftp/users/alice/files"

    def test_callable_gets_the_user(self, alice, djftpd):
        djftpd(HOME_DIR=lambda user: f"/srv/ftp/{user.username.upper()}")

        assert resolve_home(alice) == "/srv/ftp/ALICE"

    def test_legacy_get_ftp_home_dir_gets_the_username(self, alice, set_legacy):
        set_legacy("get_ftp_home_dir", lambda username: f"/srv/ftp/legacy/{username}")

        assert resolve_home(alice) == "/srv/ftp/legacy/alice"

    def test_home_dir_beats_legacy(self, alice, djftpd, set_legacy):
        set_legacy("get_ftp_home_dir", lambda username: "/srv/ftp/legacy")
        djftpd(HOME_DIR="/srv/ftp/new/{username}")

        assert resolve_home(alice) == "/srv/ftp/new/alice"

    @pytest.mark.parametrize("username", ["..", ".", "", "a/b", "a\\b"])
    def test_template_refuses_usernames_that_are_not_one_directory(self, username, djftpd):
        with pytest.raises(NoSafeHome):
            resolve_home(User(username=username))

    def test_relative_home_is_a_configuration_error(self, alice, djftpd):
        djftpd(HOME_DIR=lambda user: "ftp/alice")

        with pytest.raises(ImproperlyConfigured, match="must give an absolute path"):
            resolve_home(alice)

    def test_home_outside_home_root_is_a_configuration_error(self, alice, djftpd):
        djftpd(HOME_DIR="/srv/ftp/../etc/{username}")

        with pytest.raises(ImproperlyConfigured, match="outside"):
            resolve_home(alice)

    def test_without_home_root_or_home_dir_is_a_configuration_error(self, alice, settings):
        settings.DJFTPD = {"SECRET": "s" * 32}

        with pytest.raises(ImproperlyConfigured, match='Set DJFTPD\\["HOME_ROOT"\\]'):
            resolve_home(alice)

    def test_relative_home_root_is_a_configuration_error(self, alice, djftpd):
        djftpd(HOME_ROOT="srv/ftp", HOME_DIR="/srv/ftp/{username}")

        with pytest.raises(ImproperlyConfigured, match=r"HOME_ROOT.*must be an absolute path"):
            resolve_home(alice)

    def test_bad_template_is_a_configuration_error(self, alice, djftpd):
        djftpd(HOME_DIR="/srv/ftp/{user}")

        with pytest.raises(ImproperlyConfigured, match="not a valid"):
            resolve_home(alice)


class TestPerms:
    def test_default_is_djftpd_0_3_rule(self, alice, root):
        assert resolve_perms(alice) == "elr"
        assert resolve_perms(root) == "elradfmw"

    def test_legacy_superuser_gets_read_and_write_in_canonical_order(self, alice, root, set_legacy):
        set_legacy("read_perms", "rle")
        set_legacy("write_perms", "TMw")

        assert resolve_perms(alice) == "elr"
        assert resolve_perms(root) == "elrwMT"

    def test_legacy_write_perms_alone_keeps_the_default_read_perms(self, alice, root, set_legacy):
        set_legacy("write_perms", "w")

        assert resolve_perms(alice) == "elr"
        assert resolve_perms(root) == "elrw"

    def test_string_for_everyone(self, alice, root, djftpd):
        djftpd(PERMS="rle")

        assert resolve_perms(alice) == resolve_perms(root) == "elr"

    def test_callable_gets_the_user_and_is_deduplicated(self, alice, djftpd):
        djftpd(PERMS=lambda user: "wwelr" if user.username == "alice" else "")

        assert resolve_perms(alice) == "elrw"

    def test_perms_beat_legacy(self, root, djftpd, set_legacy):
        set_legacy("read_perms", "e")
        djftpd(PERMS="el")

        assert resolve_perms(root) == "el"

    @pytest.mark.parametrize("perms", ["elrX", ["e", "l"]])
    def test_never_returns_unknown_letters(self, alice, djftpd, perms):
        djftpd(PERMS=lambda user: perms)

        with pytest.raises(ImproperlyConfigured, match="permission"):
            resolve_perms(alice)


class TestWelcome:
    def test_default(self, alice):
        assert resolve_welcome(alice) == DEFAULT_WELCOME

    def test_legacy_ftp_welcome_msg(self, alice, settings):
        settings.FTP_WELCOME_MSG = "Hello from 2011"

        assert resolve_welcome(alice) == "Hello from 2011"

    def test_welcome_beats_legacy(self, alice, settings, djftpd):
        settings.FTP_WELCOME_MSG = "Hello from 2011"
        djftpd(WELCOME="Hello")

        assert resolve_welcome(alice) == "Hello"

    def test_callable(self, alice, djftpd):
        djftpd(WELCOME=lambda user: f"Hi {user.username}\nSecond line")

        assert resolve_welcome(alice) == "Hi alice\nSecond line"


class TestListen:
    def test_default(self):
        assert resolve_listen() == "127.0.0.1:2121"  # loopback, as djftpd 0.3

    @pytest.mark.parametrize(
        ("address", "port", "listen"),
        [
            ("192.0.2.1", 2100, "192.0.2.1:2100"),
            ("::1", 2100, "[::1]:2100"),
            (None, 2100, "127.0.0.1:2100"),  # djftpd 0.3's default address
            ("0.0.0.0", None, "0.0.0.0:21"),  # djftpd 0.3's default port
        ],
    )
    def test_legacy_ftp_address_and_port(self, settings, address, port, listen):
        if address is not None:
            settings.FTP_ADDRESS = address
        if port is not None:
            settings.FTP_PORT = port

        assert resolve_listen() == listen

    def test_listen_beats_legacy(self, settings, djftpd):
        settings.FTP_PORT = 2100
        djftpd(LISTEN="127.0.0.1:2999")

        assert resolve_listen() == "127.0.0.1:2999"


class TestTTL:
    def test_unset_by_default(self):
        assert resolve_ttl() is None

    @pytest.mark.parametrize("ttl", [-1, "60", True, 1.5])
    def test_invalid_ttl_is_a_configuration_error(self, djftpd, ttl):
        djftpd(TTL=ttl)

        with pytest.raises(ImproperlyConfigured, match="TTL"):
            resolve_ttl()


def test_legacy_settings_in_use_sees_both_spellings(settings, set_legacy):
    settings.FTP_PORT = 2100
    set_legacy("read_perms", "elr")

    assert legacy_settings_in_use() == ["read_perms", "FTP_PORT"]


def test_configured_settings_have_no_module_whatever_the_environment_says(monkeypatch):
    # After settings.configure(), DJANGO_SETTINGS_MODULE may still name a module, not
    # importable here, or not the project's settings: it is not looked at.
    from django.conf import UserSettingsHolder, global_settings
    from django.conf import settings as django_settings

    monkeypatch.setattr(django_settings, "_wrapped", UserSettingsHolder(global_settings))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "no.such.settings")

    assert legacy_settings_in_use() == []
