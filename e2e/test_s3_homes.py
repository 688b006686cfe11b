"""Homes in S3 (DJFTPD_STORAGE=s3://djftpd-test/ftp) served to real clients: curl, lftp and
ftplib against the real sidecar and versitygw; what S3 cannot do is refused with the reason;
Django reads the uploads through djftpd.storage.ftp_storage(user)."""

from __future__ import annotations

import ftplib
import io
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import USERS, Stack, s3server


def client(stack: Stack, user: str = "alice") -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=30)
    ftp.login(user, USERS[user])
    return ftp


def s3_object(s3, key: str) -> bytes:
    return s3.client().get_object(Bucket=s3server.BUCKET, Key=key)["Body"].read()


def pending_uploads(s3) -> list:
    return s3.client().list_multipart_uploads(Bucket=s3server.BUCKET).get("Uploads", [])


def test_curl_round_trip_lands_in_the_bucket(s3_stack: Stack, s3, tmp_path: Path):
    payload = os.urandom(9 * 1024 * 1024 + 5)  # two parts of 8 MiB
    src = tmp_path / "curl.bin"
    src.write_bytes(payload)
    base = f"ftp://alice:{USERS['alice']}@127.0.0.1:{s3_stack.ftp_port}"
    up = subprocess.run(
        ["curl", "-sS", "-T", str(src), f"{base}/curl.bin"],
        check=False,
        capture_output=True,
    )
    assert up.returncode == 0, up.stderr
    assert s3_object(s3, "ftp/alice/curl.bin") == payload
    down = subprocess.run(
        ["curl", "-sS", f"{base}/curl.bin"], check=False, capture_output=True
    )
    assert down.returncode == 0 and down.stdout == payload
    listing = subprocess.run(
        ["curl", "-sS", "-l", f"{base}/"], check=False, capture_output=True, text=True
    )
    assert "curl.bin" in listing.stdout.split()
    assert pending_uploads(s3) == []


def test_lftp_directories_and_renames(s3_stack: Stack, s3, tmp_path: Path):
    (tmp_path / "l.txt").write_text("lftp")
    script = (
        f"set ftp:ssl-allow no; set net:max-retries 1; "
        f"open -u alice,{USERS['alice']} ftp://127.0.0.1:{s3_stack.ftp_port}; "
        f"mkdir ld; put {tmp_path / 'l.txt'} -o ld/l.txt; mv ld/l.txt ld/m.txt; "
        "mv ld le; cls -1 le; rm le/m.txt; rmdir le; cls -1; quit"
    )
    res = subprocess.run(
        ["lftp", "-c", script], check=False, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert "le/m.txt" in res.stdout
    assert "le" not in res.stdout.split()[1:]
    keys = s3.client().list_objects_v2(Bucket=s3server.BUCKET, Prefix="ftp/alice/l")
    assert keys.get("KeyCount", 0) == 0, keys


def test_ftplib_refusals_say_why(s3_stack: Stack, s3):
    ftp = client(s3_stack)
    ftp.storbinary("STOR keep.txt", io.BytesIO(b"keep"))
    refusals = {
        "APPE": lambda: ftp.storbinary("APPE keep.txt", io.BytesIO(b"more")),
        "REST+STOR": lambda: ftp.storbinary("STOR keep.txt", io.BytesIO(b"x"), rest=2),
        "MFMT": lambda: ftp.sendcmd("MFMT 20200101000000 keep.txt"),
        "SITE CHMOD": lambda: ftp.sendcmd("SITE CHMOD 600 keep.txt"),
    }
    for name, call in refusals.items():
        with pytest.raises(
            ftplib.error_perm, match="^550 .*not supported on object storage: "
        ):
            call()
        assert s3_object(s3, "ftp/alice/keep.txt") == b"keep", name
    assert "MFMT" not in ftp.sendcmd("FEAT")
    buf = io.BytesIO()
    ftp.retrbinary("RETR keep.txt", buf.write, rest=1)
    assert buf.getvalue() == b"eep"
    assert ftp.size("keep.txt") == 4
    assert [name for name, _ in ftp.mlsd()] == ["keep.txt"] or "keep.txt" in ftp.nlst()
    ftp.delete("keep.txt")
    ftp.quit()


def test_bob_reads_only_his_prefix(s3_stack: Stack, s3):
    s3.client().put_object(
        Bucket=s3server.BUCKET, Key="ftp/bob/hello.txt", Body=b"bob's"
    )
    ftp = client(s3_stack, "bob")
    assert ftp.nlst() == ["hello.txt"]
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.retrbinary("RETR ../alice/keep.txt", lambda _: None)
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.storbinary("STOR x.txt", io.BytesIO(b"x"))  # bob's letters are elr
    ftp.quit()


def test_django_reads_an_ftp_upload_through_ftp_storage(s3_stack: Stack):
    ftp = client(s3_stack)
    ftp.storbinary("STOR for-django.txt", io.BytesIO(b"uploaded over FTP"))
    ftp.quit()
    code = (
        "from django.contrib.auth import get_user_model; "
        "from djftpd.storage import ftp_storage; "
        "s = ftp_storage(get_user_model().objects.get(username='alice'), addressing_style='path'); "
        "print(s.open('for-django.txt').read().decode())"
    )
    res = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=s3_stack.site,
        env=s3_stack.env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "uploaded over FTP"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def sidecar_pid(stack: Stack) -> int:
    """The djftpd process startftpserver runs (itself, or its child)."""
    assert stack.sidecar is not None
    pid = stack.sidecar.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


def test_one_gib_stor_keeps_rss_growth_under_64_mib(s3_stack: Stack, s3):
    """Parts go out as they fill: memory is bounded by part size x (concurrency + 1)."""
    pid = sidecar_pid(s3_stack)
    before = rss_kib(pid)
    peak = before
    chunk = bytes(1 << 20)
    ftp = client(s3_stack)

    def blocks():
        nonlocal peak
        for i in range(1024):
            if i % 16 == 0:
                peak = max(peak, rss_kib(pid))
            yield chunk

    class Stream(io.RawIOBase):
        def __init__(self) -> None:
            self.it = blocks()

        def read(self, n: int = -1) -> bytes:
            return next(self.it, b"")

    ftp.storbinary("STOR gib.bin", Stream(), blocksize=1 << 20)
    peak = max(peak, rss_kib(pid))
    assert ftp.size("gib.bin") == 1 << 30
    ftp.delete("gib.bin")
    ftp.quit()
    growth_mib = (peak - before) / 1024
    print(f"sidecar RSS {before // 1024} MiB before, peak {peak // 1024} MiB")
    assert growth_mib < 64, f"RSS grew {growth_mib:.0f} MiB for a 1 GiB STOR"
    assert pending_uploads(s3) == []


def test_two_sidecars_on_one_bucket_see_each_other(s3_stack: Stack):
    """Replicas share the bucket: what one receives, the other lists and serves at once."""
    other = replace(
        s3_stack, processes=[], ftp_port=0, ops_port=0, sidecar=None, django=None
    )
    try:
        other.start_sidecar(DJFTPD_SPOOL_DIR=str(s3_stack.workdir / "spool-other"))
        one, two = client(s3_stack), client(other)
        one.storbinary("STOR shared.txt", io.BytesIO(b"from one"))
        assert "shared.txt" in two.nlst()
        buf = io.BytesIO()
        two.retrbinary("RETR shared.txt", buf.write)
        assert buf.getvalue() == b"from one"
        two.delete("shared.txt")
        assert "shared.txt" not in one.nlst()
        one.quit()
        two.quit()
    finally:
        other.stop()
