"""Django changes reach the running sidecar at once: a password changed in Django ends the
cached login over FTP immediately, through the signed cache purge push (DESIGN.md section 2,
``POST /cache/purge``), not after the cache TTL; and ``manage.py djftpd_check`` tells whether the
running sidecar shares Django's secret (``POST /ping``)."""

from __future__ import annotations

import ftplib
import subprocess
import sys

import pytest
from conftest import DEMO, USERS, Stack

NEW_PASSWORD = "alice-new-password"


def login(stack: Stack, password: str) -> None:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=20)
    try:
        ftp.login("alice", password)
    finally:
        ftp.close()


def test_password_change_in_django_purges_the_cached_login(stack: Stack):
    login(stack, USERS["alice"])  # now cached by the sidecar (60 s by default)
    login(stack, USERS["alice"])
    try:
        stack.manage("demo_password", "alice", NEW_PASSWORD)

        with pytest.raises(ftplib.error_perm, match="^530"):
            login(stack, USERS["alice"])
        login(stack, NEW_PASSWORD)
    finally:
        stack.manage("demo_password", "alice", USERS["alice"])

    # Restoring the password purges again: the new password is refused at once.
    with pytest.raises(ftplib.error_perm, match="^530"):
        login(stack, NEW_PASSWORD)
    login(stack, USERS["alice"])


def djftpd_check(stack: Stack, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "djftpd_check"],
        check=False,
        cwd=DEMO,
        env={**stack.env, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_djftpd_check_pings_the_running_sidecar(stack: Stack):
    result = djftpd_check(stack)

    assert result.returncode == 0, result.stderr
    assert "System checks of djftpd: no errors." in result.stdout
    assert f"http://127.0.0.1:{stack.ops_port}/ping: ok" in result.stdout


def test_djftpd_check_reports_a_secret_mismatch(stack: Stack):
    result = djftpd_check(
        stack, DJFTPD_SECRET="not-the-sidecars-secret-0123456789abcdef"
    )

    assert result.returncode == 1
    assert f"http://127.0.0.1:{stack.ops_port}/ping: secret mismatch" in result.stderr
