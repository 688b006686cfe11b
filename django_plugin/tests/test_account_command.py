"""``manage.py djftpd_account``: FTP accounts from the shell, validated as in the admin, saved
through the model (so the sidecars' cache is purged), every mistake a CommandError (exit 1)."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from djftpd.management.commands.djftpd_account import Command
from djftpd.models import FTPAccount
from tests.conftest import purges

pytestmark = pytest.mark.django_db


def run(*args: str, **options: Any) -> str:
    """Run ``djftpd_account *args``; return what it printed."""
    out = StringIO()
    call_command("djftpd_account", *args, stdout=out, **options)
    return out.getvalue()


def fails(*args: str) -> str:
    """Run ``djftpd_account *args`` expecting a CommandError with exit status 1; its text."""
    with pytest.raises(CommandError) as excinfo:
        run(*args)
    assert excinfo.value.returncode == 1
    return str(excinfo.value)


@pytest.fixture
def account(alice) -> FTPAccount:
    return FTPAccount.objects.create(user=alice, perms="elr", quota_bytes=1000, max_sessions=2)


class TestCreate:
    def test_with_every_option(self, alice):
        out = run(
            "create", "alice", "--home", "/srv/ftp/a", "--perms", "wrle", "--quota", "10G",
            "--max-sessions", "3", "--welcome", "Hi",
        )  # fmt: skip

        account = FTPAccount.objects.get(user=alice)
        assert out == "Created the FTP account of alice.\n"
        assert (account.enabled, account.home_dir, account.perms, account.welcome) == (
            True, "/srv/ftp/a", "elrw", "Hi",
        )  # fmt: skip
        assert (account.quota_bytes, account.max_sessions) == (10 * 2**30, 3)

    def test_with_no_option_every_field_is_the_site_default(self, alice):
        run("create", "alice")

        account = FTPAccount.objects.get(user=alice)
        assert account.enabled
        assert (account.home_dir, account.perms, account.welcome) == ("", "", "")
        assert (account.quota_bytes, account.max_sessions) == (None, None)

    def test_disabled(self, alice):
        run("create", "alice", "--disabled")

        assert not FTPAccount.objects.get(user=alice).enabled

    @pytest.mark.parametrize(
        ("quota", "expected"), [("0", 0), ("1048576", 2**20), ("500M", 500 * 2**20), ("2KiB", 2048)]
    )
    def test_quota_units(self, alice, quota, expected):
        run("create", "alice", "--quota", quota)

        assert FTPAccount.objects.get(user=alice).quota_bytes == expected

    def test_twice_is_refused(self, account):
        assert "has an FTP account already" in fails("create", "alice", "--perms", "elrw")
        account.refresh_from_db()
        assert account.perms == "elr"

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            (["--perms", "elrX"], "--perms: Unknown permission letters 'X'."),
            (["--perms", "elr w"], "--perms: Unknown permission letters ' '."),
            (["--home", "ftp/a"], "--home: Must be an absolute path."),
            (["--home", "/etc/a"], '--home: Must be inside /srv/ftp (DJFTPD["HOME_ROOT"]).'),
            (["--home", "/srv/ftp-other/a"], "--home: Must be inside /srv/ftp"),
            (["--quota", "ten"], "--quota: 'ten' is not a size in bytes"),
            (["--quota", "-1"], "--quota: '-1' is not a size in bytes"),
            (["--quota", "2**70"], "--quota: '2**70' is not a size in bytes"),
            (["--quota", "8388608T"], "--quota: '8388608T' is more than 9223372036854775807 bytes"),
            (["--max-sessions", "2147483648"], "--max-sessions: '2147483648' is more than"),
            (["--max-sessions", "-1"], "--max-sessions: '-1' is not a whole number >= 0"),
            (["--max-sessions", "two"], "--max-sessions: 'two' is not a whole number >= 0"),
            (["--quota", "1", "--no-quota"], "not allowed with argument"),
            (["--max-sessions", "1", "--no-max-sessions"], "not allowed with argument"),
        ],
    )
    def test_invalid_values_are_refused_and_nothing_is_saved(self, alice, options, message):
        assert message in fails("create", "alice", *options)
        assert not FTPAccount.objects.exists()

    def test_unknown_user(self):
        assert fails("create", "bob") == "No user 'bob'."
        assert not FTPAccount.objects.exists()


class TestUpdate:
    def test_changes_only_the_fields_given(self, account):
        out = run("update", "alice", "--perms", "elradfmw", "--home", "/srv/ftp/alice")

        account.refresh_from_db()
        assert out == "Updated the FTP account of alice: home_dir, perms.\n"
        assert (account.perms, account.home_dir) == ("elradfmw", "/srv/ftp/alice")
        assert (account.quota_bytes, account.max_sessions) == (1000, 2)

    def test_clears_limits_and_resets_to_site_defaults(self, account):
        run("update", "alice", "--no-quota", "--no-max-sessions", "--perms", "")

        account.refresh_from_db()
        assert (account.quota_bytes, account.max_sessions, account.perms) == (None, None, "")

    def test_invalid_value_changes_nothing(self, account):
        assert "--perms: Unknown permission letters 'Z'." in fails(
            "update", "alice", "--perms", "Z"
        )

        account.refresh_from_db()
        assert account.perms == "elr"

    def test_nothing_to_update(self, account):
        assert fails("update", "alice").startswith("Nothing to update")

    def test_unknown_user_and_user_without_account(self, alice):
        assert fails("update", "bob", "--perms", "elr") == "No user 'bob'."
        assert "'alice' has no FTP account" in fails("update", "alice", "--perms", "elr")
        assert not FTPAccount.objects.exists()


class TestEnableDisableDelete:
    def test_disable_then_enable(self, account):
        assert run("disable", "alice") == "The FTP account of alice is disabled.\n"
        account.refresh_from_db()
        assert not account.enabled
        assert run("disable", "alice") == "The FTP account of alice is disabled already.\n"
        assert run("enable", "alice") == "The FTP account of alice is enabled.\n"
        account.refresh_from_db()
        assert account.enabled

    def test_delete_keeps_the_user(self, account, alice):
        out = run("delete", "alice")

        assert out == "Deleted the FTP account of alice; the user remains.\n"
        assert not FTPAccount.objects.exists()
        alice.refresh_from_db()

    @pytest.mark.parametrize("action", ["disable", "enable", "delete"])
    def test_unknown_user_and_user_without_account(self, alice, action):
        assert fails(action, "bob") == "No user 'bob'."
        assert "'alice' has no FTP account" in fails(action, "alice")

    def test_quiet_with_verbosity_0(self, account):
        assert run("disable", "alice", verbosity=0) == ""


class TestList:
    def test_text(self, account, django_user_model):
        bob = django_user_model.objects.create_user("bob")
        FTPAccount.objects.create(user=bob, enabled=False, home_dir="/srv/ftp/b")

        lines = run("list").splitlines()

        assert lines == [
            "USER   ENABLED  HOME        PERMS  QUOTA  SESSIONS",
            "alice  yes      -           elr    1000   2",
            "bob    no       /srv/ftp/b  -      -      -",
        ]

    def test_json_with_a_filter(self, account, django_user_model):
        FTPAccount.objects.create(user=django_user_model.objects.create_user("bob"))

        [row] = json.loads(run("list", "alice", "--format", "json"))

        assert row == {
            "username": "alice",
            "enabled": True,
            "home_dir": "",
            "perms": "elr",
            "quota_bytes": 1000,
            "max_sessions": 2,
            "welcome": "",
            "created": account.created.isoformat(),
            "updated": account.updated.isoformat(),
        }

    def test_empty(self, alice):
        assert run("list") == "No FTP accounts.\n"
        assert json.loads(run("list", "--format", "json")) == []
        assert json.loads(run("list", "alice", "--format", "json")) == []

    def test_unknown_user_and_format(self):
        assert fails("list", "bob") == "No user 'bob'."
        assert "invalid choice: 'xml'" in fails("list", "--format", "xml")


def test_unknown_action():
    assert "invalid choice: 'rename'" in fails("rename", "alice")


def test_command_line_exit_status(alice, capsys, monkeypatch):
    # run_from_argv closes the database connections when done: keep the test's open (on
    # PostgreSQL or MariaDB, closing it would end the test's transaction).
    monkeypatch.setattr(connections, "close_all", lambda: None)

    with pytest.raises(SystemExit) as excinfo:
        Command().run_from_argv(["manage.py", "djftpd_account", "update", "bob", "--perms", "e"])

    assert excinfo.value.code == 1
    assert "CommandError: No user 'bob'." in capsys.readouterr().err


def test_every_change_purges_the_sidecars_cache(alice, sidecar, sidecar_urls, committed):
    for args in (
        ["create", "alice"],
        ["update", "alice", "--perms", "elr"],
        ["disable", "alice"],
        ["enable", "alice"],
        ["delete", "alice"],
    ):
        with committed():
            run(*args)

    assert purges(sidecar) == [
        (path, {"username": "alice"})
        for _ in range(5)
        for path in ("/a/cache/purge", "/b/cache/purge")
    ]
