"""RFC behaviour seen by a real client (Python's ftplib): TYPE A converts line ends, REST
markers past the end are refused with 554, APPE after REST writes at the marker."""

from __future__ import annotations

import ftplib
import io

import pytest
from conftest import USERS, Stack


def client(stack: Stack) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=20)
    ftp.login("alice", USERS["alice"])
    return ftp


def test_type_a_converts_line_ends(stack: Stack):
    home = stack.home("alice")
    ftp = client(stack)
    # storlines sends TYPE A and CRLF line ends, as a Windows client does.
    ftp.storlines("STOR ascii.txt", io.BytesIO(b"one\r\ntwo\n"))
    assert (home / "ascii.txt").read_bytes() == b"one\ntwo\n"
    (home / "unix.txt").write_bytes(b"x\ny\n")
    raw: list[bytes] = []
    ftp.voidcmd("TYPE A")
    with ftp.transfercmd("RETR unix.txt") as conn:
        raw.append(conn.makefile("rb").read())
    ftp.voidresp()
    assert raw == [b"x\r\ny\r\n"]
    assert ftp.size("unix.txt") == 6  # what RETR sends in TYPE A (RFC 3659 4)
    ftp.voidcmd("TYPE I")
    assert ftp.size("unix.txt") == 4
    buf = io.BytesIO()
    ftp.retrbinary("RETR unix.txt", buf.write)
    assert buf.getvalue() == b"x\ny\n"
    ftp.quit()


def test_rest_past_the_end_and_appe_after_rest(stack: Stack):
    home = stack.home("alice")
    (home / "rest.bin").write_bytes(b"abcdef")
    ftp = client(stack)
    with pytest.raises(ftplib.error_perm, match="^554"):
        ftp.retrbinary("RETR rest.bin", lambda _: None, rest=7)
    with pytest.raises(ftplib.error_perm, match="^554"):
        ftp.storbinary("STOR rest.bin", io.BytesIO(b"zz"), rest=7)
    assert (home / "rest.bin").read_bytes() == b"abcdef"
    ftp.storbinary("APPE rest.bin", io.BytesIO(b"XY"), rest=3)
    assert (home / "rest.bin").read_bytes() == b"abcXY"
    ftp.quit()


def test_refusals_name_the_real_reason(stack: Stack):
    """Issue 20 item 6: "550 Permission denied" is a missing permission letter and only
    that; every other refusal names its own reason."""
    home = stack.home("alice")
    (home / "adir" / "inner").mkdir(parents=True, exist_ok=True)
    (home / "afile.txt").write_bytes(b"x")
    ftp = client(stack)
    cases = [
        ("RMD /", "^550 The home directory cannot be removed or renamed"),
        ("DELE nothere.txt", "^550 No such file or directory"),
        ("RMD adir", "^550 Directory not empty"),
        ("MKD adir", "^550 File exists"),
        ("DELE adir", "^550 Is a directory"),
        ("CWD afile.txt", "^550 Not a directory"),
    ]
    for line, want in cases:
        with pytest.raises(ftplib.error_perm, match=want):
            ftp.sendcmd(line)
    ftp.sendcmd("RNFR adir")
    with pytest.raises(ftplib.error_perm, match="^550 Not a directory"):
        ftp.sendcmd("RNTO afile.txt")
    with pytest.raises(ftplib.error_perm, match="^554 Invalid REST parameter"):
        ftp.retrbinary("RETR afile.txt", lambda _: None, rest=9)
    ftp.quit()
