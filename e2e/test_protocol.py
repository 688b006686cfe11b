"""FTP and FTPS conformance with real clients (lftp, curl, Python's ftplib) against the
real sidecar and the demo site: plain, explicit TLS (AUTH TLS + PROT P) and implicit TLS."""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from conftest import USERS, Stack

MODES = ["plain", "explicit", "implicit"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lftp(
    stack: Stack, mode: str, script: str, user: str = "alice", timeout: float = 240
):
    """Run an lftp script as ``user`` in ``mode``; returns the completed process."""
    settings = [
        "set ssl:verify-certificate no",
        "set net:max-retries 1",
        "set net:timeout 20",
    ]
    if mode == "plain":
        settings.append("set ftp:ssl-allow no")
        url = f"ftp://127.0.0.1:{stack.ftp_port}"
    elif mode == "explicit":
        settings += ["set ftp:ssl-force yes", "set ftp:ssl-protect-data yes"]
        url = f"ftp://127.0.0.1:{stack.ftp_port}"
    else:
        settings.append("set ftp:ssl-protect-data yes")
        url = f"ftps://127.0.0.1:{stack.ftps_port}"
    cmds = "; ".join([*settings, f"open -u {user},{USERS[user]} {url}", script, "quit"])
    return subprocess.run(
        ["lftp", "-c", cmds],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def curl_base(stack: Stack, mode: str, path: str, user: str = "alice") -> list[str]:
    auth = f"{user}:{USERS[user]}"
    if mode == "plain":
        return ["curl", "-sS", f"ftp://{auth}@127.0.0.1:{stack.ftp_port}{path}"]
    if mode == "explicit":
        return [
            "curl",
            "-sS",
            "-k",
            "--ssl-reqd",
            f"ftp://{auth}@127.0.0.1:{stack.ftp_port}{path}",
        ]
    return ["curl", "-sS", "-k", f"ftps://{auth}@127.0.0.1:{stack.ftps_port}{path}"]


def run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)


def make_tree(root: Path, files: int) -> None:
    rng = os.urandom
    for i in range(files):
        p = root / f"d{i % 7}" / f"sub{i % 3}" / f"file {i} ü.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng(100 + (i * 37) % 5000))


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("mode", MODES)
def test_lftp_mirror_up_and_back(stack: Stack, tmp_path: Path, mode: str):
    local = tmp_path / "up"
    make_tree(local, 300)
    back = tmp_path / "back"
    res = lftp(
        stack,
        mode,
        f"mirror -R --no-perms {local} /mirror-{mode}; mirror /mirror-{mode} {back}",
    )
    assert res.returncode == 0, res.stderr
    assert tree_digest(back) == tree_digest(local)
    assert tree_digest(stack.home("alice") / f"mirror-{mode}") == tree_digest(local)


@pytest.fixture(scope="module")
def big_file(stack: Stack) -> Path:
    """A 48 MiB file in alice's home."""
    p = stack.home("alice") / "big.bin"
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("wb") as f:
        for _ in range(48):
            f.write(os.urandom(1 << 20))
    return p


@pytest.mark.parametrize("mode", MODES)
def test_lftp_parallel_pget(stack: Stack, big_file: Path, tmp_path: Path, mode: str):
    out = tmp_path / "big.bin"
    res = lftp(stack, mode, f"pget -n 4 /big.bin -o {out}")
    assert res.returncode == 0, res.stderr
    assert sha256(out) == sha256(big_file)


@pytest.mark.parametrize("mode", MODES)
def test_curl_round_trip_and_resume(
    stack: Stack, big_file: Path, tmp_path: Path, mode: str
):
    """curl downloads part of a file, is killed, and finishes it with ``-C -``."""
    out = tmp_path / "resumed.bin"
    proc = subprocess.Popen(
        [*curl_base(stack, mode, "/big.bin"), "--limit-rate", "4M", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        not out.exists() or out.stat().st_size < 2 << 20
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = out.stat().st_size
    assert 0 < partial < big_file.stat().st_size

    res = run([*curl_base(stack, mode, "/big.bin"), "-C", "-", "-o", str(out)])
    assert res.returncode == 0, res.stderr
    assert sha256(out) == sha256(big_file)

    src = tmp_path / "up.bin"
    src.write_bytes(os.urandom(3 << 20))
    res = run([*curl_base(stack, mode, f"/curl-{mode}.bin"), "-T", str(src)])
    assert res.returncode == 0, res.stderr
    assert sha256(stack.home("alice") / f"curl-{mode}.bin") == sha256(src)


@pytest.mark.parametrize("method", ["multicwd", "singlecwd", "nocwd"])
def test_curl_ftp_methods(stack: Stack, tmp_path: Path, method: str):
    nested = stack.home("alice") / "a" / "b" / "c"
    nested.mkdir(parents=True, exist_ok=True)
    (nested / "deep.txt").write_text(f"deep {method}")
    res = run([*curl_base(stack, "plain", "/a/b/c/deep.txt"), "--ftp-method", method])
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"deep {method}".encode()
    src = tmp_path / "m.txt"
    src.write_text(method)
    res = run(
        [
            *curl_base(stack, "plain", f"/a/b/c/{method}.txt"),
            "--ftp-method",
            method,
            "-T",
            str(src),
        ]
    )
    assert res.returncode == 0, res.stderr
    assert (nested / f"{method}.txt").read_text() == method


def test_killed_upload_leaves_old_file(stack: Stack, tmp_path: Path):
    """A client killed mid-STOR: the old content stays and no partial file is visible."""
    target = stack.home("alice") / "precious.bin"
    old = os.urandom(1 << 20)
    target.write_bytes(old)
    src = tmp_path / "new.bin"
    src.write_bytes(os.urandom(32 << 20))
    proc = subprocess.Popen(
        [
            *curl_base(stack, "plain", "/precious.bin"),
            "-T",
            str(src),
            "--limit-rate",
            "2M",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    assert target.read_bytes() == old
    assert (
        sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".djftpd"))
        == []
    )
    listing = run(curl_base(stack, "plain", "/"))
    assert b".djftpd" not in listing.stdout


class SessionReusingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session, which
    djftpd requires (like vsftpd's require_ssl_reuse); ftplib does not do it by itself."""

    def ntransfercmd(self, cmd: str, rest: int | str | None = None):  # type: ignore[override]
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session
            )
        return conn, size


def tls_client(stack: Stack) -> ftplib.FTP_TLS:
    ctx = ssl.create_default_context(cafile=str(stack.cert))
    ftp = SessionReusingFTP_TLS(context=ctx)
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=20)
    ftp.login("alice", USERS["alice"])
    ftp.prot_p()
    return ftp


def test_ftplib_tls_and_mlsd_facts(stack: Stack):
    ftp = tls_client(stack)  # verifies the certificate for 127.0.0.1
    ftp.mkd("facts")
    ftp.storbinary('STOR facts/ünï cødé "q".txt', io.BytesIO(b"12345"))
    entries = dict(
        ftp.mlsd("facts", facts=["type", "size", "modify", "perm", "unique"])
    )
    assert entries["facts"]["type"] == "cdir"  # named as given (RFC 3659 7.7.4)
    assert entries[".."]["type"] == "pdir"
    facts = entries['ünï cødé "q".txt']
    assert facts["type"] == "file" and facts["size"] == "5"
    assert len(facts["modify"]) == 14 and facts["perm"] == "rwadf" and facts["unique"]
    buf = io.BytesIO()
    ftp.retrbinary('RETR facts/ünï cødé "q".txt', buf.write)
    assert buf.getvalue() == b"12345"
    assert ftp.sendcmd('HASH facts/ünï cødé "q".txt').startswith("213 SHA-256 0-5 ")
    feat = ftp.sendcmd("FEAT")
    for want in (
        "AUTH TLS",
        "PBSZ",
        "PROT",
        "MLST",
        "EPSV",
        "REST STREAM",
        "UTF8",
        "HASH",
    ):
        assert want in feat
    ftp.quit()


def test_ftplib_plain_rename_and_size(stack: Stack):
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=20)
    ftp.login("alice", USERS["alice"])
    ftp.storbinary("STOR -dash file.txt", io.BytesIO(b"dash"))
    ftp.rename("-dash file.txt", "renamed file.txt")
    assert ftp.size("renamed file.txt") == 4
    assert ftp.sendcmd("MDTM renamed file.txt").startswith("213 ")
    ftp.quit()


def served_certificate(port: int) -> bytes:
    """The DER certificate the implicit-TLS listener presents."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        return tls.getpeercert(binary_form=True)


def test_sighup_reloads_the_certificate(stack_factory):
    """A renewed certificate is served after SIGHUP (forwarded by startftpserver), without
    a restart; sessions keep working."""
    s: Stack = stack_factory()
    s.start_django()
    s.start_sidecar(tls=True)
    before = served_certificate(s.ftps_port)
    s.cert.unlink()
    s._make_cert()  # a new key pair at the same paths
    s.sidecar.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while served_certificate(s.ftps_port) == before:
        assert time.monotonic() < deadline, "the old certificate is still served"
        time.sleep(0.2)
    ftp = tls_client(s)  # verifies against the new certificate
    ftp.retrlines("LIST", lambda _: None)
    ftp.quit()


def test_help_mlsd_and_unimplemented_commands(stack: Stack):
    """Issue 20 items 4-5 with ftplib: HELP (RFC 1123), 502 for REIN, MLSD per RFC 3659."""
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", stack.ftp_port, timeout=20)
    help_text = ftp.sendcmd("HELP")
    assert help_text.startswith("214") and "RETR" in help_text and "MLSD" in help_text
    assert ftp.sendcmd("HELP STOR").startswith("214 Syntax: STOR")
    with pytest.raises(ftplib.error_perm, match="^502"):
        ftp.sendcmd("REIN")
    ftp.login("alice", USERS["alice"])
    assert "CHMOD" in ftp.sendcmd("SITE HELP")
    assert "\n TVFS" in ftp.sendcmd("FEAT")
    ftp.mkd("mlsd-dir")
    ftp.storbinary("STOR mlsd-dir/a.txt", io.BytesIO(b"abc"))
    with pytest.raises(ftplib.error_perm, match="^501"):
        list(ftp.mlsd("mlsd-dir/a.txt"))
    entries = dict(ftp.mlsd("mlsd-dir", facts=["type", "size"]))
    assert entries["mlsd-dir"] == {"type": "cdir"}
    assert entries["a.txt"] == {"type": "file", "size": "3"}
    assert all(set(facts) <= {"type", "size"} for facts in entries.values())
    ftp.quit()
