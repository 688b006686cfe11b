"""FTP actions reach Django as events, end to end: alice works over FTP with ftplib, and the
demo site (gunicorn) records each action as an FTPEvent row and sends its djftpd signal,
which the demo's receiver appends to events.log (DESIGN.md section 2)."""

from __future__ import annotations

import ftplib
import io
import json
import sqlite3
import time
import uuid

from conftest import USERS, Stack

DEADLINE = 10.0


def session_rows(stack: Stack, session: str | None, marker: str) -> list[dict]:
    """FTPEvent rows of ``session``; without one, of the session whose paths hold ``marker``."""
    db = sqlite3.connect(
        f"file:{stack.workdir / 'db.sqlite3'}?mode=ro", uri=True, timeout=5
    )
    db.row_factory = sqlite3.Row
    try:
        if session is None:
            row = db.execute(
                "SELECT session FROM djftpd_ftpevent WHERE path LIKE ? LIMIT 1",
                (f"%{marker}%",),
            ).fetchone()
            if row is None:
                return []
            session = row["session"]
        rows = db.execute(
            "SELECT id, type, username, path, to_path, bytes, session FROM djftpd_ftpevent "
            "WHERE session = ? ORDER BY time, rowid",
            (session,),
        ).fetchall()
        return [dict(r) for r in rows]
    finally:
        db.close()


def wait_for(stack: Stack, marker: str, last_type: str) -> list[dict]:
    """Poll the demo database until the session's ``last_type`` event arrived."""
    deadline = time.monotonic() + DEADLINE
    rows: list[dict] = []
    while time.monotonic() < deadline:
        try:
            rows = session_rows(stack, None, marker)
        except sqlite3.OperationalError:  # table not there yet, or locked for a moment
            rows = []
        if any(r["type"] == last_type for r in rows):
            return rows
        time.sleep(0.2)
    raise AssertionError(
        f"no {last_type!r} event within {DEADLINE}s; rows so far: {rows}"
    )


def test_ftp_actions_become_events_rows_and_signals(stack: Stack):
    d = f"/ev-{uuid.uuid4().hex[:8]}"
    data = b"events end to end\n"
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=20)
    ftp.login("alice", USERS["alice"])
    ftp.mkd(d)
    ftp.storbinary(f"STOR {d}/up.txt", io.BytesIO(data))
    ftp.retrbinary(f"RETR {d}/up.txt", io.BytesIO().write)
    ftp.rename(f"{d}/up.txt", f"{d}/moved.txt")
    ftp.delete(f"{d}/moved.txt")
    ftp.rmd(d)
    ftp.quit()

    rows = wait_for(stack, d, "disconnect")

    actions = [
        (r["type"], r["username"], r["path"], r["to_path"], r["bytes"])
        for r in rows
        if r["type"] not in ("connect", "disconnect", "login", "logout")
    ]
    assert actions == [
        ("directory_created", "alice", d, "", None),
        ("file_received", "alice", f"{d}/up.txt", "", len(data)),
        ("file_sent", "alice", f"{d}/up.txt", "", len(data)),
        ("file_renamed", "alice", f"{d}/up.txt", f"{d}/moved.txt", None),
        ("file_deleted", "alice", f"{d}/moved.txt", "", None),
        ("directory_deleted", "alice", d, "", None),
    ]
    types = [r["type"] for r in rows]
    assert types[:2] == ["connect", "login"]
    assert types[-2:] == ["logout", "disconnect"]
    assert rows[0]["username"] == ""  # connect comes before login

    # The demo's receiver saw each event's signal exactly once.
    signalled: dict[str, list[str]] = {}
    for line in (stack.workdir / "events.log").read_text().splitlines():
        entry = json.loads(line)
        signalled.setdefault(entry["event_id"], []).append(entry["type"])
    assert {r["id"]: signalled.get(r["id"]) for r in rows} == {
        r["id"]: [r["type"]] for r in rows
    }
