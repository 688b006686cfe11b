"""Hostile clients and failing backends against the real sidecar and the demo site."""

from __future__ import annotations

import ftplib
import io
import os
import signal
import socket
import subprocess
import time

import pytest
from conftest import USERS, Stack


def login(port: int, user: str, password: str, source: str = "127.0.0.1") -> ftplib.FTP:
    ftp = ftplib.FTP(source_address=(source, 0))
    ftp.connect("127.0.0.1", port, timeout=20)
    ftp.login(user, password)
    return ftp


def test_brute_force_is_slowed_then_banned_while_others_transfer(stack_factory):
    """Wrong passwords from 127.0.0.2 are answered slowly, then the address is banned;
    alice, from 127.0.0.1, keeps uploading and downloading all along."""
    s: Stack = stack_factory()
    s.start_django()
    s.start_sidecar(
        DJFTPD_FAILED_LOGIN_DELAY="200ms",
        DJFTPD_BAN_THRESHOLD="12",
        DJFTPD_BAN_WINDOW="1m",
        DJFTPD_BAN_TIME="5m",
        DJFTPD_MAX_LOGIN_ATTEMPTS="3",
    )
    alice = login(s.ftp_port, "alice", USERS["alice"])
    payload = os.urandom(256 * 1024)
    attempts, banned_at = 0, None
    started = time.monotonic()
    for attempt in range(300):  # bounded: the ban must come long before
        try:
            ftp = ftplib.FTP(source_address=("127.0.0.2", 0))
            ftp.connect("127.0.0.1", s.ftp_port, timeout=20)
        except ftplib.error_temp as exc:
            assert str(exc).startswith("421") and "failed logins" in str(exc)
            banned_at = attempt
            break
        for _ in range(3):
            attempts += 1
            try:
                ftp.login("bob", f"guess-{attempts % 2}")
                pytest.fail("a wrong password logged in")
            except ftplib.error_perm as exc:
                assert str(exc).startswith("530")
            except (ftplib.error_temp, EOFError, OSError):
                break  # closed after the last attempt of the connection, or banned
        ftp.close()
        alice.storbinary(f"STOR during-{attempt}.bin", io.BytesIO(payload))
        buf = io.BytesIO()
        alice.retrbinary(f"RETR during-{attempt}.bin", buf.write)
        assert buf.getvalue() == payload
    elapsed = time.monotonic() - started
    assert banned_at is not None, "never banned"
    assert 12 <= attempts <= 15
    assert elapsed >= 12 * 0.2  # every failure waited the failed-login delay
    alice.quit()
    # The ban is per address: alice from 127.0.0.1 still logs in.
    login(s.ftp_port, "alice", USERS["alice"]).quit()


def test_foreign_address_cannot_steal_passive_connection(stack: Stack):
    (stack.home("alice")).mkdir(parents=True, exist_ok=True)
    (stack.home("alice") / "mine.txt").write_bytes(b"only for alice")
    ftp = login(stack.ftp_port, "alice", USERS["alice"])
    ftp.voidcmd("TYPE I")
    host, port = ftp.makepasv()
    thief = socket.create_connection(
        (host, port), timeout=10, source_address=("127.0.0.2", 0)
    )
    ftp.putcmd("RETR mine.txt")
    owner = socket.create_connection((host, port), timeout=10)
    assert ftp.getresp().startswith("150")
    data = b""
    while chunk := owner.recv(65536):
        data += chunk
    owner.close()
    assert ftp.voidresp().startswith("226")
    assert data == b"only for alice"
    thief.settimeout(5)
    assert thief.recv(100) == b""  # dropped, nothing sent
    thief.close()
    ftp.quit()


def test_traversal_and_symlink_escape_reveal_nothing(stack: Stack):
    home = stack.home("alice")
    home.mkdir(parents=True, exist_ok=True)
    link = home / "etc-link"
    if not link.is_symlink():
        link.symlink_to("/etc")
    base = f"ftp://alice:{USERS['alice']}@127.0.0.1:{stack.ftp_port}"
    for path in [
        "/../../../../etc/passwd",
        "/etc-link/passwd",
        "/etc-link/",
        "/%2e%2e/%2e%2e/etc/passwd",
    ]:
        res = subprocess.run(
            ["curl", "-sS", "--path-as-is", base + path],
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert res.returncode != 0, f"{path}: {res.stdout[:200]!r}"
        assert b"root:" not in res.stdout and b"passwd" not in res.stdout
    ftp = login(stack.ftp_port, "alice", USERS["alice"])
    for path in ["../../../../etc/passwd", "/etc-link/passwd", "etc-link/../../bob/x"]:
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.retrbinary(f"RETR {path}", io.BytesIO().write)
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.cwd("etc-link")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.storbinary("STOR etc-link/planted", io.BytesIO(b"x"))
    assert not os.path.exists("/etc/planted")
    ftp.cwd("/../..")
    assert ftp.pwd() == "/"
    ftp.quit()


def test_django_killed_and_restarted(stack_factory):
    """Django goes away mid-session and comes back: no 530 in between, logins resume."""
    s: Stack = stack_factory()
    s.start_django()
    s.start_sidecar(DJFTPD_CACHE_TTL="1s", DJFTPD_AUTH_TIMEOUT="2s")
    login(s.ftp_port, "alice", USERS["alice"]).quit()
    time.sleep(1.2)
    os.killpg(s.django.proc.pid, signal.SIGKILL)  # master and workers, no goodbye
    s.django.proc.wait()
    login(s.ftp_port, "alice", USERS["alice"]).quit()  # stale cache
    with pytest.raises(ftplib.error_temp, match="^421"):
        login(s.ftp_port, "bob", USERS["bob"])
    s.start_django()
    bob = login(s.ftp_port, "bob", USERS["bob"])
    assert bob.pwd() == "/"
    bob.quit()
    with pytest.raises(ftplib.error_perm, match="^530"):
        login(s.ftp_port, "bob", "wrong")
