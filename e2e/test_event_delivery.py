"""Event delivery across outages: Django down while files are uploaded, the sidecar
restarted in between, Django back: every event arrives once, in order (DESIGN.md §2, §7)."""

from __future__ import annotations

import ftplib
import io
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from conftest import USERS, Stack


def signal_log(stack: Stack, marker: str) -> list[dict]:
    """The demo receiver's lines (one per signal sent) whose paths hold ``marker``."""
    log = stack.workdir / "events.log"
    if not log.exists():
        return []
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [e for e in lines if marker in (e["path"] or "") + (e["to_path"] or "")]


def wait_signals(
    stack: Stack, marker: str, count: int, deadline: float = 30
) -> list[dict]:
    end = time.monotonic() + deadline
    got: list[dict] = []
    while time.monotonic() < end:
        got = signal_log(stack, marker)
        if len(got) >= count:
            time.sleep(1.5)  # a duplicate would arrive with the next flush
            return signal_log(stack, marker)
        time.sleep(0.2)
    raise AssertionError(f"{len(got)} of {count} events arrived: {got}")


def login(stack: Stack) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=20)
    ftp.login("alice", USERS["alice"])
    return ftp


def test_events_survive_django_outage_and_sidecar_restart(stack_factory):
    s: Stack = stack_factory()
    spool = s.workdir / "spool"
    s.start_django()
    s.start_sidecar(DJFTPD_SPOOL_DIR=str(spool), DJFTPD_CACHE_TTL="10m")
    login(s).quit()  # cached now
    s.stop_django()

    marker = f"outage-{uuid.uuid4().hex[:8]}"
    ftp = login(s)  # a cache hit: Django is down
    ftp.mkd(f"/{marker}")
    for i in range(10):
        ftp.storbinary(f"STOR /{marker}/f{i}.txt", io.BytesIO(b"x" * (i + 1)))
    ftp.rename(f"/{marker}/f0.txt", f"/{marker}/g0.txt")
    ftp.delete(f"/{marker}/f1.txt")
    ftp.quit()

    s.sidecar.stop()  # SIGTERM with Django down: the queue goes to the spool
    assert any(p.stat().st_size > 0 for p in spool.rglob("*") if p.is_file()), (
        "nothing spooled"
    )
    s.start_sidecar(DJFTPD_SPOOL_DIR=str(spool), DJFTPD_CACHE_TTL="10m")
    s.start_django()

    expected = (
        [("directory_created", f"/{marker}", None)]
        + [("file_received", f"/{marker}/f{i}.txt", i + 1) for i in range(10)]
        + [
            ("file_renamed", f"/{marker}/f0.txt", None),
            ("file_deleted", f"/{marker}/f1.txt", None),
        ]
    )
    got = wait_signals(s, marker, len(expected))
    assert [(e["type"], e["path"], e["bytes"]) for e in got] == expected
    assert len({e["event_id"] for e in got}) == len(got), "an event fired twice"
    assert got[-2]["to_path"] == f"/{marker}/g0.txt"


def test_interrupted_upload_is_an_incomplete_event(stack: Stack, tmp_path: Path):
    marker = f"cut-{uuid.uuid4().hex[:8]}"
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(16 << 20))
    url = f"ftp://alice:{USERS['alice']}@127.0.0.1:{stack.ftp_port}/{marker}.bin"
    proc = subprocess.Popen(
        ["curl", "-sS", "-T", str(src), "--limit-rate", "2M", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    got = wait_signals(stack, marker, 1)
    assert [e["type"] for e in got] == ["incomplete_file_received"]
    assert 0 < got[0]["bytes"] < 16 << 20
    assert not (stack.home("alice") / f"{marker}.bin").exists()
