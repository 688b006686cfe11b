"""Refused upload commands change nothing on disk (issue 20): STOR, STOU, APPE and
REST+STOR, refused for want of a data connection, for a data connection from another
address, for a used-up quota or for a missing permission letter, leave every file as it
was (bytes and mtime) and create none, in both upload modes. Driven with Python's ftplib
against the real sidecar and the demo site."""

from __future__ import annotations

import ftplib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Stack, new_stack

PASSWORD = "upload-password"

MAKE_USERS = f"""
from django.contrib.auth import get_user_model
from djftpd.models import FTPAccount
for name, perms, quota in [("writer", "elradfmw", None), ("full", "elradfmw", 10),
                           ("reader", "elr", None)]:
    user, _ = get_user_model().objects.get_or_create(username=name)
    user.set_password("{PASSWORD}")
    user.save()
    FTPAccount.objects.update_or_create(
        user=user, defaults={{"perms": perms, "quota_bytes": quota}}
    )
"""

CONTENT = b"0123456789"  # exactly the quota of "full"
MTIME = 1577934245  # 2020-01-02 03:04:05 UTC

COMMANDS = [
    ["STOR f.txt"],
    ["STOR new.txt"],
    ["STOU"],
    ["APPE f.txt"],
    ["APPE new.txt"],
    ["REST 3", "STOR f.txt"],
]

# name, user, data channel (None, "pasv": the client connects, "foreign": 127.0.0.2
# connects), expected final reply code
CASES = [
    ("no data connection", "writer", None, "425"),
    ("foreign data peer", "writer", "foreign", "425"),
    ("quota used up", "full", "pasv", "552"),
    ("no permission letter", "reader", "pasv", "550"),
]


@pytest.fixture(scope="module", params=["atomic", "standard"])
def uploads(request, tmp_path_factory) -> Iterator[Stack]:
    s = new_stack(tmp_path_factory.mktemp(f"uploads-{request.param}"))
    try:
        s.manage("shell", "-c", MAKE_USERS)
        s.start_django()
        s.start_sidecar(DJFTPD_UPLOAD_MODE=request.param, DJFTPD_DATA_TIMEOUT="1s")
        yield s
    finally:
        s.stop()


def reset_home(home: Path) -> Path:
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    f = home / "f.txt"
    f.write_bytes(CONTENT)
    os.utime(f, (MTIME, MTIME))
    return f


def reply(ftp: ftplib.FTP) -> str:
    try:
        return ftp.getresp()
    except ftplib.Error as e:
        return str(e)


def try_upload(stack: Stack, user: str, cmds: list[str], data: str | None) -> str:
    """Send cmds as user with the data channel data asks for; return the final reply."""
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=20)
    ftp.login(user, PASSWORD)
    ftp.voidcmd("TYPE I")
    addr = ftp.makepasv() if data else None
    for c in cmds[:-1]:
        ftp.sendcmd(c)
    ftp.putcmd(cmds[-1])
    resp = reply(ftp)
    if resp.startswith("150") and addr:
        conn = socket.socket()
        if data == "foreign":
            conn.bind(("127.0.0.2", 0))
        conn.connect(addr)
        conn.sendall(b"x" * 100)
        conn.close()
        resp = reply(ftp)
    ftp.close()
    return resp


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_refused_upload_changes_nothing(uploads: Stack, case):
    _, user, data, want = case
    for cmds in COMMANDS:
        f = reset_home(uploads.home(user))
        resp = try_upload(uploads, user, cmds, data)
        what = " + ".join(cmds)
        assert resp[:3] == want, f"{what}: {resp}"
        assert sorted(p.name for p in f.parent.iterdir()) == ["f.txt"], what
        assert f.read_bytes() == CONTENT, what
        assert f.stat().st_mtime == MTIME, what
