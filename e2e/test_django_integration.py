"""Django changes reach the running sidecar at once: a password changed in Django ends the
cached login over FTP immediately, through the signed cache purge push (DESIGN.md section 2,
``POST /cache/purge``), not after the cache TTL."""

from __future__ import annotations

import ftplib

import pytest
from conftest import USERS, Stack

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
