"""SFTP on homes in S3 (issue 16 with DJFTPD_STORAGE=s3://...): paramiko against the real
sidecar and versitygw. Uploads land whole in the bucket (paramiko pipelines its writes),
downloads and ranged reads come back, directories and renames work; what S3 cannot do
(append, resume, chmod, times) is refused with SSH_FX_OP_UNSUPPORTED and the reason."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import USERS, Stack, free_port, new_stack, s3_env, s3server
from test_sftp import openssh_sftp, paramiko_client, start_sftp
from test_sftp import pytestmark as needs_openssh


@pytest.fixture(scope="module")
def sftp_s3_stack(
    s3: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A stack of its own serving SFTP on homes under the bucket's prefix ``sftp``."""
    s = new_stack(tmp_path_factory.mktemp("sftps3"), extra_env=s3_env(s3, "sftp"))
    s.sftp_port = free_port()  # type: ignore[attr-defined]
    try:
        s.start_django()
        start_sftp(s)
        yield s
    finally:
        s.stop()


def s3_object(s3: object, key: str) -> bytes:
    client = s3.client()  # type: ignore[attr-defined]
    return client.get_object(Bucket=s3server.BUCKET, Key=key)["Body"].read()


def test_paramiko_on_s3_homes(sftp_s3_stack: Stack, s3: object, tmp_path: Path) -> None:
    payload = os.urandom(9 * 1024 * 1024 + 5)  # two parts of 8 MiB
    src = tmp_path / "big.bin"
    src.write_bytes(payload)
    client = paramiko_client(sftp_s3_stack, "alice")
    try:
        sftp = client.open_sftp()
        sftp.put(str(src), "big.bin")
        assert s3_object(s3, "sftp/alice/big.bin") == payload
        assert sftp.stat("big.bin").st_size == len(payload)
        with sftp.open("big.bin", "rb") as f:
            f.seek(8 * 1024 * 1024 - 3)
            assert f.read(10) == payload[8 * 1024 * 1024 - 3 :][:10]
        dst = tmp_path / "back.bin"
        sftp.get("big.bin", str(dst))
        assert dst.read_bytes() == payload
        sftp.mkdir("d")
        sftp.rename("big.bin", "d/moved.bin")
        assert sftp.listdir("d") == ["moved.bin"]
        sftp.remove("d/moved.bin")
        sftp.rmdir("d")
        assert "d" not in sftp.listdir(".")
    finally:
        client.close()


def test_what_s3_cannot_do_is_refused_with_the_reason(
    sftp_s3_stack: Stack, s3: object
) -> None:
    client = paramiko_client(sftp_s3_stack, "alice")
    try:
        sftp = client.open_sftp()
        with sftp.open("keep.txt", "wb") as f:
            f.write(b"keep")
        refusals = {
            "append": lambda: sftp.open("keep.txt", "ab").write(b"more"),
            "resume": lambda: sftp.open("keep.txt", "r+b").write(b"x"),
            "chmod": lambda: sftp.chmod("keep.txt", 0o600),
            "utime": lambda: sftp.utime("keep.txt", (0, 0)),
        }
        for what, op in refusals.items():
            with pytest.raises(OSError) as err:
                op()
            assert "storage" in str(err.value), (what, err.value)
        assert s3_object(s3, "sftp/alice/keep.txt") == b"keep"
    finally:
        client.close()


@needs_openssh
def test_openssh_sftp_put_and_reget_on_s3_homes(
    sftp_s3_stack: Stack, s3: object
) -> None:
    """OpenSSH's sftp pipelines its writes (64 in flight): they reach the bucket in order;
    reget reads from an offset; reput (resume) is refused with the reason."""
    data = os.urandom(9 * 1024 * 1024 + 7)
    local = sftp_s3_stack.workdir / "ssh.bin"
    local.write_bytes(data)
    (sftp_s3_stack.workdir / "ssh.back").write_bytes(data[:1_000_000])
    out = openssh_sftp(
        sftp_s3_stack,
        "alice",
        f"put {local} ssh.bin\nreget ssh.bin ssh.back\n",
        password=USERS["alice"],
    )
    assert out.returncode == 0, out.stderr
    assert s3_object(s3, "sftp/alice/ssh.bin") == data
    assert (sftp_s3_stack.workdir / "ssh.back").read_bytes() == data
    half = sftp_s3_stack.workdir / "half.bin"
    half.write_bytes(data[:1_000_000])
    out = openssh_sftp(
        sftp_s3_stack,
        "alice",
        f"put {half} part.bin\nreput {local} part.bin\n",
        password=USERS["alice"],
    )
    assert out.returncode != 0
    # OpenSSH shows the status code, not the server's message.
    assert "unsupported" in out.stderr.lower(), out.stderr
    assert s3_object(s3, "sftp/alice/part.bin") == data[:1_000_000]
