"""Crash safety (issue 21): uploads a client saw ``226`` for reach Django exactly once, however
often the sidecar is killed with SIGKILL (an OOM kill, a node failure) and restarted.

Several ftplib clients upload small files in a loop while the Go binary is SIGKILLed at random
moments and restarted through ``manage.py startftpserver``, 20 rounds. Afterwards the demo
database has exactly one ``file_received`` FTPEvent row per upload answered ``226``, and a row
for an upload without ``226`` only where the server had finished storing it (the reply was lost
with the process, not the upload).
"""

from __future__ import annotations

import ftplib
import io
import os
import random
import signal
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from conftest import USERS, Stack

CLIENTS = 4
ROUNDS = 20
LOOP_DEADLINE = 75.0  # the kill loop; the whole test stays under 90 s
DELIVERY_DEADLINE = 15.0


@dataclass
class Client:
    """One ftplib client uploading in a loop; it remembers what each upload got."""

    stack: Stack
    name: str
    stop: threading.Event
    acknowledged: dict[str, int] = field(default_factory=dict)  # path -> size, 226 seen
    unacknowledged: dict[str, int] = field(default_factory=dict)  # path -> size, no 226

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                ftp = ftplib.FTP()
                ftp.connect("127.0.0.1", self.stack.ftp_port, timeout=5)
                ftp.login("alice", USERS["alice"])
            except (OSError, EOFError, ftplib.Error):
                time.sleep(0.05)  # the sidecar is down or restarting
                continue
            try:
                while not self.stop.is_set():
                    path, size = f"/{self.name}-{i}.bin", 100 + i
                    i += 1
                    try:
                        ftp.storbinary(f"STOR {path}", io.BytesIO(b"x" * size))
                    except (OSError, EOFError, ftplib.Error):
                        self.unacknowledged[path] = size
                        break
                    self.acknowledged[path] = size
            finally:
                ftp.close()


def go_binary_pid(parent: int) -> int:
    """The pid of startftpserver's child (the djftpd binary), from /proc."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("startftpserver has no child process")


def file_received_rows(stack: Stack, marker: str) -> list[tuple[str, int]]:
    db = sqlite3.connect(
        f"file:{stack.workdir / 'db.sqlite3'}?mode=ro", uri=True, timeout=5
    )
    try:
        return db.execute(
            "SELECT path, bytes FROM djftpd_ftpevent WHERE type = 'file_received' "
            "AND path LIKE ?",
            (f"/{marker}-%",),
        ).fetchall()
    finally:
        db.close()


def kill_and_restart(stack: Stack, rounds: int, deadline: float) -> int:
    """SIGKILLs the Go binary at random moments and restarts it; returns the rounds done."""
    done = 0
    while done < rounds and time.monotonic() < deadline:
        time.sleep(random.uniform(0.1, 0.5))
        assert stack.sidecar
        os.kill(go_binary_pid(stack.sidecar.proc.pid), signal.SIGKILL)
        stack.sidecar.proc.wait(timeout=10)
        stack.start_sidecar()
        done += 1
    return done


def test_uploads_acknowledged_survive_sigkill(stack_factory):
    started = time.monotonic()
    s: Stack = stack_factory()
    s.start_django()
    s.start_sidecar()
    marker = f"crash-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    clients = [Client(s, f"{marker}-c{n}", stop) for n in range(CLIENTS)]
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    for t in threads:
        t.start()
    try:
        rounds = kill_and_restart(s, ROUNDS, started + LOOP_DEADLINE)
        time.sleep(0.3)  # a few uploads after the last restart
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert rounds == ROUNDS, f"only {rounds} kill rounds within {LOOP_DEADLINE}s"

    acknowledged = {p: n for c in clients for p, n in c.acknowledged.items()}
    unacknowledged = {p: n for c in clients for p, n in c.unacknowledged.items()}
    assert len(acknowledged) > ROUNDS, (
        f"too few uploads to mean anything: {acknowledged}"
    )

    end = time.monotonic() + DELIVERY_DEADLINE
    while time.monotonic() < end:
        rows = file_received_rows(s, marker)
        if set(acknowledged) <= {p for p, _ in rows}:
            break
        time.sleep(0.2)
    time.sleep(1.5)  # a duplicate would arrive with the next flush
    rows = file_received_rows(s, marker)

    paths = [p for p, _ in rows]
    missing = sorted(set(acknowledged) - set(paths))
    assert not missing, (
        f"{len(missing)} uploads answered 226 have no event: {missing[:10]}"
    )
    twice = sorted({p for p in paths if paths.count(p) > 1})
    assert not twice, f"file_received recorded more than once: {twice}"
    for path, size in rows:
        want = acknowledged.get(path, unacknowledged.get(path))
        assert want == size, f"row for {path} says {size} bytes, the upload had {want}"
        if path not in acknowledged:
            # No 226, yet an event: the server had stored the whole file; only the reply
            # died with the process.
            on_disk = s.home("alice") / path.lstrip("/")
            assert on_disk.exists() and on_disk.stat().st_size == size, (
                f"an event for {path}, an upload that did not complete"
            )
    assert time.monotonic() - started < 90, "the chaos test took over 90 s"
