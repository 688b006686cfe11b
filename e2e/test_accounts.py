"""Per-user settings from Django's FTPAccount reach the sidecar: quota, sessions, perms,
disabled accounts (DESIGN.md §2 grant fields, §4 quota)."""

from __future__ import annotations

import ftplib
import io

import pytest
from conftest import Stack, new_stack

CAROL = ("carol", "carol-password")

MAKE_CAROL = """
from django.contrib.auth import get_user_model
from djftpd.models import FTPAccount
user, _ = get_user_model().objects.get_or_create(username="carol")
user.set_password("carol-password")
user.save()
FTPAccount.objects.update_or_create(
    user=user, defaults={"perms": "elradfmw", "quota_bytes": 1000, "max_sessions": 2}
)
"""


def carol(stack: Stack, password: str = CAROL[1]) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=20)
    ftp.login(CAROL[0], password)
    return ftp


@pytest.fixture(scope="module")
def accounts(tmp_path_factory) -> Stack:

    s = new_stack(tmp_path_factory.mktemp("accounts"))
    try:
        s.manage("shell", "-c", MAKE_CAROL)
        s.start_django()
        s.start_sidecar()
        yield s
    finally:
        s.stop()


def test_quota_exactly_at_the_limit_and_one_byte_over(accounts: Stack):
    ftp = carol(accounts)
    ftp.storbinary("STOR a.bin", io.BytesIO(b"a" * 600))
    with pytest.raises(ftplib.error_perm, match="^552"):
        ftp.storbinary("STOR b.bin", io.BytesIO(b"b" * 401))
    assert not (accounts.home("carol") / "b.bin").exists()
    ftp.storbinary("STOR b.bin", io.BytesIO(b"b" * 400))  # exactly 1000
    assert ftp.sendcmd("AVBL") == "213 0"
    ftp.delete("a.bin")
    assert ftp.sendcmd("AVBL") == "213 600"
    ftp.quit()


def test_max_sessions(accounts: Stack):
    first, second = carol(accounts), carol(accounts)
    with pytest.raises(ftplib.error_temp, match="^421"):
        carol(accounts)
    first.quit()
    second.quit()


def test_disabled_account_is_a_wrong_password(accounts: Stack):
    accounts.manage(
        "shell",
        "-c",
        "from djftpd.models import FTPAccount; "
        "a = FTPAccount.objects.get(user__username='carol'); a.enabled = False; a.save()",
    )
    try:
        with pytest.raises(ftplib.error_perm, match="^530"):
            carol(accounts)
    finally:
        accounts.manage(
            "shell",
            "-c",
            "from djftpd.models import FTPAccount; "
            "a = FTPAccount.objects.get(user__username='carol'); a.enabled = True; a.save()",
        )
    carol(accounts).quit()
