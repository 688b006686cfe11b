"""versitygw, the S3-compatible server of the repository's Go tests (``make tools``),
started on 127.0.0.1 over a temporary directory for Python tests.

A missing binary fails the tests that need it, unless ``DJFTPD_SKIP_S3=1``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

VERSION = "v1.8.0"
ACCESS_KEY = "djftpdtestaccess"
SECRET_KEY = "djftpdtestsecret0123456789"
REGION = "us-east-1"
BUCKET = "djftpd-test"


def binary() -> Path | None:
    """``$DJFTPD_VERSITYGW``, else where ``make tools`` puts it (beside Go's build cache)."""
    if os.environ.get("DJFTPD_VERSITYGW"):
        return Path(os.environ["DJFTPD_VERSITYGW"])
    go = shutil.which("go")
    if go is None:
        return None
    cache = subprocess.run([go, "env", "GOCACHE"], capture_output=True, text=True, check=False)
    if cache.returncode != 0:
        return None
    root = Path(cache.stdout.strip()).parent
    return root / "djftpd-tools" / f"versitygw-{VERSION}" / "versitygw"


@dataclass
class S3Server:
    endpoint: str
    directory: Path

    def env(self) -> dict[str, str]:
        """The AWS SDKs' standard variables pointing at this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}),
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(directory: Path) -> Iterator[S3Server]:
    """Run versitygw until the generator is closed; creates BUCKET."""
    path = binary()
    if path is None or not path.exists():
        if os.environ.get("DJFTPD_SKIP_S3") == "1":
            pytest.skip(f"versitygw {VERSION} not found ({path}) and DJFTPD_SKIP_S3=1")
        pytest.fail(f"versitygw {VERSION} not found at {path}: make tools (or DJFTPD_SKIP_S3=1)")
    port = _free_port()
    env = {**os.environ, "ROOT_ACCESS_KEY": ACCESS_KEY, "ROOT_SECRET_KEY": SECRET_KEY}
    log = open(directory.parent / f"versitygw-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(path), "--port", f"127.0.0.1:{port}", "posix", str(directory)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"versitygw did not start; see {log.name}") from None
                time.sleep(0.05)
        server = S3Server(f"http://127.0.0.1:{port}", directory)
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
