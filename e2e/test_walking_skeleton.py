"""A Django user logs in over FTP through the sidecar, end to end, with real clients:
curl and Python's ftplib against the real binary and the demo site under gunicorn."""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import subprocess
import time

import pytest
from conftest import USERS, Stack

CURL = ["curl", "--silent", "--show-error", "--max-time", "60"]


def ftp_login(stack: Stack, user: str, password: str | None = None) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=20)
    reply = ftp.login(user, USERS[user] if password is None else password)
    assert reply.startswith("230")
    return ftp


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CURL, *args], check=False, capture_output=True, timeout=90)


def test_curl_upload_download_round_trip(stack: Stack, tmp_path):
    payload = os.urandom(5 * 1024 * 1024 + 123)
    src = tmp_path / "payload.bin"
    src.write_bytes(payload)
    up = curl("-T", str(src), stack.url("alice", "/payload.bin"))
    assert up.returncode == 0, up.stderr
    assert (stack.home("alice") / "payload.bin").read_bytes() == payload

    down = curl(stack.url("alice", "/payload.bin"))
    assert down.returncode == 0, down.stderr
    assert hashlib.sha256(down.stdout).digest() == hashlib.sha256(payload).digest()

    listing = curl(stack.url("alice", "/"))
    assert listing.returncode == 0, listing.stderr
    assert b"payload.bin" in listing.stdout


def test_curl_wrong_password_is_530(stack: Stack):
    res = curl(f"ftp://alice:not-her-password@127.0.0.1:{stack.ftp_port}/")
    assert res.returncode == 67, res  # curl: "login denied"
    with pytest.raises(ftplib.error_perm, match="^530"):
        ftp_login(stack, "alice", "not-her-password")


def test_ftplib_directory_life_cycle(stack: Stack):
    ftp = ftp_login(stack, "alice")
    assert ftp.mkd("reports") == "/reports"
    ftp.cwd("reports")
    assert ftp.pwd() == "/reports"
    ftp.storbinary("STOR q1.txt", io.BytesIO(b"first quarter"))
    ftp.rename("q1.txt", "q1-final.txt")
    assert ftp.nlst() == ["q1-final.txt"]
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)
    assert (
        len(lines) == 1
        and lines[0].endswith(" q1-final.txt")
        and lines[0].startswith("-")
    )
    assert ftp.size("q1-final.txt") == len(b"first quarter")
    buf = io.BytesIO()
    ftp.retrbinary("RETR q1-final.txt", buf.write)
    assert buf.getvalue() == b"first quarter"
    ftp.delete("q1-final.txt")
    ftp.cwd("..")
    ftp.rmd("reports")
    assert "reports" not in ftp.nlst()
    ftp.quit()
    assert not (stack.home("alice") / "reports").exists()


def test_bob_reads_but_cannot_write(stack: Stack):
    (stack.home("alice").parent / "bob").mkdir(parents=True, exist_ok=True)
    (stack.home("bob") / "readme.txt").write_text("for bob")
    ftp = ftp_login(stack, "bob")
    buf = io.BytesIO()
    ftp.retrbinary("RETR readme.txt", buf.write)
    assert buf.getvalue() == b"for bob"
    with pytest.raises(ftplib.error_perm, match="^550 Permission denied"):
        ftp.storbinary("STOR upload.txt", io.BytesIO(b"nope"))
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.mkd("newdir")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.delete("readme.txt")
    ftp.quit()
    assert not (stack.home("bob") / "upload.txt").exists()
    assert (stack.home("bob") / "readme.txt").exists()


def test_curl_upload_refused_for_bob(stack: Stack, tmp_path):
    src = tmp_path / "x.txt"
    src.write_text("x")
    res = curl("-T", str(src), stack.url("bob", "/x.txt"))
    assert res.returncode == 25, res  # curl: "upload failed" (the server said 550)
    assert not (stack.home("bob") / "x.txt").exists()


def test_cannot_escape_home(stack: Stack):
    ftp = ftp_login(stack, "alice")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.retrbinary("RETR ../bob/readme.txt", io.BytesIO().write)
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.retrbinary("RETR /etc/passwd", io.BytesIO().write)
    ftp.cwd("/../../..")
    assert ftp.pwd() == "/"
    ftp.quit()


def test_django_down_stale_cache_and_421(stack_factory):
    """Django stopped: alice, cached, still logs in within the stale window; bob, never
    seen, gets 421 (never 530: an outage is not a wrong password)."""
    s: Stack = stack_factory()
    s.start_django()
    s.start_sidecar(
        DJFTPD_CACHE_TTL="1s", DJFTPD_CACHE_STALE_TTL="1h", DJFTPD_AUTH_TIMEOUT="2s"
    )
    ftp_login(s, "alice").quit()
    time.sleep(1.5)  # alice's entry is now past its TTL, inside the stale window
    s.stop_django()

    ftp = ftp_login(s, "alice")
    ftp.storbinary("STOR while-django-down.txt", io.BytesIO(b"still works"))
    ftp.quit()
    assert (s.home("alice") / "while-django-down.txt").read_bytes() == b"still works"

    with pytest.raises(ftplib.error_temp, match="^421"):
        ftp_login(s, "bob")
    with pytest.raises(ftplib.error_temp, match="^421"):
        ftp_login(s, "alice", "a-wrong-password")
