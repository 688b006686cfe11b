"""SFTP beside FTP, end to end (issue 16): the real sidecar with DJFTPD_SFTP_LISTEN, the demo
site under gunicorn, and real clients: OpenSSH's sftp in batch mode (password through
sshpass, and keys), OpenSSH's scp over SFTP (``-s``, keys), lftp's sftp:// (password, through
ssh), paramiko and curl's sftp://. Same accounts, grants, homes and events as
FTP; keys managed with ``manage.py djftpd_keys``."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from conftest import BINARY, USERS, Stack, free_port, new_stack

pytestmark = pytest.mark.skipif(
    not shutil.which("sftp") or not shutil.which("sshpass"),
    reason="needs OpenSSH's sftp and sshpass (Debian: openssh-client, sshpass)",
)

TIMEOUT = 30


@pytest.fixture(scope="module")
def sftp_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own serving SFTP (its sidecar is restarted by a test)."""
    s = new_stack(tmp_path_factory.mktemp("sftp"))
    s.sftp_port = free_port()  # type: ignore[attr-defined]
    try:
        s.start_django()
        start_sftp(s)
        yield s
    finally:
        s.stop()


def start_sftp(s: Stack) -> None:
    s.start_sidecar(
        DJFTPD_SFTP_LISTEN=f"127.0.0.1:{s.sftp_port}",  # type: ignore[attr-defined]
        DJFTPD_STATE_DIR=str(s.workdir / "state"),
    )
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", s.sftp_port), timeout=1).close()  # type: ignore[attr-defined]
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("SFTP port did not open")


def host_public_key(s: Stack) -> str:
    """The sidecar's generated host key, public half (``TYPE BASE64``)."""
    key = s.workdir / "state" / "ssh_host_ed25519_key"
    out = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, check=True
    )
    return " ".join(out.stdout.split()[:2])


def known_hosts(s: Stack) -> Path:
    path = s.workdir / "known_hosts"
    path.write_text(f"[127.0.0.1]:{s.sftp_port} {host_public_key(s)}\n")  # type: ignore[attr-defined]
    return path


def ssh_options(s: Stack, key: Path | None) -> list[str]:
    """OpenSSH client options of sftp and scp: djftpd's port, its host key checked strictly,
    and only the key (when given) or only the password."""
    argv = [
        "-P",
        str(s.sftp_port),  # type: ignore[attr-defined]
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts(s)}",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "IdentitiesOnly=yes",
    ]
    if key is not None:
        return [*argv, "-i", str(key), "-o", "PreferredAuthentications=publickey"]
    return [
        *argv,
        "-o",
        "PreferredAuthentications=password",
        "-o",
        "PubkeyAuthentication=no",
    ]


def run_client(
    s: Stack, argv: list[str], batch: str | None = None
) -> subprocess.CompletedProcess:
    """Run a client in the stack's workdir, its output captured, within TIMEOUT."""
    return subprocess.run(
        argv,
        check=False,
        input=batch,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=s.workdir,
    )


def openssh_sftp(
    s: Stack,
    user: str,
    batch: str,
    *,
    password: str | None = None,
    key: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run OpenSSH's sftp in batch mode (``-b -``), checking the host key strictly."""
    # BatchMode before -b: ssh keeps the first value, and -b implies BatchMode=yes.
    argv = [
        "sftp",
        "-o",
        "BatchMode=no" if password is not None else "BatchMode=yes",
        "-b",
        "-",
        *ssh_options(s, key),
        f"{user}@127.0.0.1",
    ]
    if password is not None:
        argv = ["sshpass", "-p", password, *argv]
    return run_client(s, argv, batch)


def paramiko_client(
    s: Stack, user: str, password: str | None = None, **kw
) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts(s)))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1",
        port=s.sftp_port,  # type: ignore[attr-defined]
        username=user,
        password=password if password is not None else USERS[user],
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
        **kw,
    )
    return client


def test_openssh_sftp_put_get_rename_mkdir_rmdir(
    sftp_stack: Stack, tmp_path: Path
) -> None:
    name = f"sftp-{uuid.uuid4().hex[:8]}"
    local = sftp_stack.workdir / f"{name}.txt"
    local.write_bytes(b"hello over sftp\n" * 1000)
    batch = f"""put {local} {name}.txt
mkdir {name}
rename {name}.txt {name}/moved.txt
get {name}/moved.txt {name}.back
ls -l {name}
rm {name}/moved.txt
rmdir {name}
"""
    out = openssh_sftp(sftp_stack, "alice", batch, password=USERS["alice"])

    assert out.returncode == 0, out.stderr
    assert (sftp_stack.workdir / f"{name}.back").read_bytes() == local.read_bytes()
    assert not (sftp_stack.home("alice") / name).exists()


def test_openssh_sftp_resume_with_reput_and_reget(sftp_stack: Stack) -> None:
    name = f"resume-{uuid.uuid4().hex[:8]}.bin"
    data = bytes(range(256)) * 4096
    local = sftp_stack.workdir / name
    local.write_bytes(data)
    (sftp_stack.home("alice") / name).write_bytes(data[:100_000])
    (sftp_stack.workdir / f"{name}.back").write_bytes(data[:50_000])

    out = openssh_sftp(
        sftp_stack,
        "alice",
        f"reput {local} {name}\nreget {name} {name}.back\n",
        password=USERS["alice"],
    )

    assert out.returncode == 0, out.stderr
    assert (sftp_stack.home("alice") / name).read_bytes() == data
    assert (sftp_stack.workdir / f"{name}.back").read_bytes() == data


def test_openssh_sftp_after_silences(sftp_stack: Stack) -> None:
    """A session silent for more than a second (its request server parked) answers the
    next command as before."""
    name = f"quiet-{uuid.uuid4().hex[:8]}.txt"
    local = sftp_stack.workdir / name
    local.write_bytes(b"after a silence\n" * 100)
    batch = f"""pwd
!sleep 1.5
put {local} {name}
!sleep 1.5
get {name} {name}.back
"""
    out = openssh_sftp(sftp_stack, "alice", batch, password=USERS["alice"])

    assert out.returncode == 0, out.stderr
    assert (sftp_stack.home("alice") / name).read_bytes() == local.read_bytes()
    assert (sftp_stack.workdir / f"{name}.back").read_bytes() == local.read_bytes()


def test_paramiko_transfers_and_refusals(sftp_stack: Stack) -> None:
    client = paramiko_client(sftp_stack, "alice")
    try:
        sftp = client.open_sftp()
        name = f"pm-{uuid.uuid4().hex[:8]}"
        with sftp.open(f"{name}.txt", "wb") as f:
            f.write(b"paramiko")
        assert sftp.open(f"{name}.txt").read() == b"paramiko"
        sftp.chmod(f"{name}.txt", 0o600)  # alice has M
        assert stat.S_IMODE(sftp.stat(f"{name}.txt").st_mode) == 0o600
        with pytest.raises(PermissionError):
            sftp.symlink(f"{name}.txt", f"{name}.lnk")
        assert not (sftp_stack.home("alice") / f"{name}.lnk").exists()
        with pytest.raises(FileNotFoundError):  # ".." stops at the home
            sftp.stat("../../../../../../etc/passwd")
        assert sftp.normalize("../../..") == "/"
        sftp.remove(f"{name}.txt")
    finally:
        client.close()


def test_symlink_leading_out_is_refused(sftp_stack: Stack) -> None:
    link = sftp_stack.home("alice") / f"out-{uuid.uuid4().hex[:8]}"
    link.symlink_to("/etc/passwd")
    client = paramiko_client(sftp_stack, "alice")
    try:
        sftp = client.open_sftp()
        with pytest.raises(PermissionError):
            sftp.open(link.name).read()
        with pytest.raises(PermissionError):
            sftp.readlink(link.name)
    finally:
        client.close()
        link.unlink()


def test_bob_is_read_only_and_may_not_chmod(sftp_stack: Stack) -> None:
    (sftp_stack.home("bob")).mkdir(parents=True, exist_ok=True)
    (sftp_stack.home("bob") / "readme.txt").write_text("for bob")
    client = paramiko_client(sftp_stack, "bob")
    try:
        sftp = client.open_sftp()
        assert sftp.open("readme.txt").read() == b"for bob"
        with pytest.raises(PermissionError):
            sftp.open("upload.txt", "wb").write(b"x")
        with pytest.raises(PermissionError):
            sftp.chmod("readme.txt", 0o777)
        with pytest.raises(PermissionError):
            sftp.remove("readme.txt")
        with pytest.raises(PermissionError):
            sftp.mkdir("d")
    finally:
        client.close()
    assert not (sftp_stack.home("bob") / "upload.txt").exists()


def test_exec_and_shell_are_refused(sftp_stack: Stack) -> None:
    client = paramiko_client(sftp_stack, "alice")
    try:
        with pytest.raises(paramiko.SSHException):
            client.exec_command("id", timeout=10)
    finally:
        client.close()


def test_wrong_password_is_refused_after_the_delay(sftp_stack: Stack) -> None:
    started = time.monotonic()
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_client(sftp_stack, "alice", password="wrong")
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_client(sftp_stack, "nobody", password="wrong")
    assert time.monotonic() - started >= 0.2  # DJFTPD_FAILED_LOGIN_DELAY=100ms, twice

    out = openssh_sftp(sftp_stack, "alice", "ls\n", password="wrong")
    assert out.returncode != 0


def test_key_added_with_djftpd_keys_logs_in_and_removed_is_refused_at_once(
    sftp_stack: Stack, tmp_path: Path
) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", str(key)],
        check=True,
    )
    pub = Path(f"{key}.pub")
    sftp_stack.manage("djftpd_keys", "add", "alice", str(pub))

    first = openssh_sftp(sftp_stack, "alice", "ls\n", key=key)
    again = openssh_sftp(sftp_stack, "alice", "ls\n", key=key)  # cached
    sftp_stack.manage("djftpd_keys", "remove", "alice", str(pub))
    removed = openssh_sftp(sftp_stack, "alice", "ls\n", key=key)

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert removed.returncode != 0, "a removed key still logs in"

    pkey = paramiko.Ed25519Key.from_private_key_file(str(key))
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_client(sftp_stack, "alice", pkey=pkey, password=None)


def test_curl_sftp(sftp_stack: Stack) -> None:
    if (
        "sftp"
        not in subprocess.run(
            ["curl", "-V"], check=False, capture_output=True, text=True
        ).stdout
    ):
        pytest.skip("curl without libssh/libssh2")
    blob = base64.b64decode(host_public_key(sftp_stack).split()[1])
    fingerprint = base64.b64encode(hashlib.sha256(blob).digest()).decode()
    name = f"curl-{uuid.uuid4().hex[:8]}.txt"
    local = sftp_stack.workdir / name
    local.write_text("via curl")
    url = f"sftp://127.0.0.1:{sftp_stack.sftp_port}/~/{name}"  # type: ignore[attr-defined]
    common = [
        "curl",
        "-sS",
        "--hostpubsha256",
        fingerprint,
        "-u",
        f"alice:{USERS['alice']}",
    ]

    up = subprocess.run(
        [*common, "-T", str(local), url],
        check=False,
        capture_output=True,
        timeout=TIMEOUT,
    )
    down = subprocess.run(
        [*common, url], check=False, capture_output=True, timeout=TIMEOUT
    )

    assert up.returncode == 0, up.stderr
    assert down.stdout == b"via curl", down.stderr


def read_events(s: Stack) -> list[dict]:
    log = s.workdir / "events.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_events_arrive_as_signals_with_protocol_sftp(sftp_stack: Stack) -> None:
    name = f"ev-{uuid.uuid4().hex[:8]}"
    client = paramiko_client(sftp_stack, "alice")
    try:
        sftp = client.open_sftp()
        with sftp.open(f"{name}.txt", "wb") as f:
            f.write(b"12345")
        sftp.mkdir(name)
        sftp.rename(f"{name}.txt", f"{name}/{name}.txt")
        sftp.open(f"{name}/{name}.txt").read()
        sftp.remove(f"{name}/{name}.txt")
        sftp.rmdir(name)
    finally:
        client.close()
    wanted = {
        ("file_received", f"/{name}.txt"),
        ("directory_created", f"/{name}"),
        ("file_renamed", f"/{name}.txt"),
        ("file_sent", f"/{name}/{name}.txt"),
        ("file_deleted", f"/{name}/{name}.txt"),
        ("directory_deleted", f"/{name}"),
    }
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        events = read_events(sftp_stack)
        seen = {(e["type"], e["path"]) for e in events if name in (e["path"] or "")}
        if wanted <= seen:
            break
        time.sleep(0.2)
    assert wanted <= seen, seen
    mine = [e for e in events if name in (e["path"] or "")]
    assert {e["protocol"] for e in mine} == {"sftp"}
    assert any(e["type"] == "login" and e["protocol"] == "sftp" for e in events)


def test_host_key_is_stable_across_a_restart(sftp_stack: Stack) -> None:
    before = host_public_key(sftp_stack)
    printed = subprocess.run(
        [str(BINARY), "--print-host-keys"],
        capture_output=True,
        text=True,
        env={**sftp_stack.env, "DJFTPD_STATE_DIR": str(sftp_stack.workdir / "state")},
        check=True,
    )
    assert sftp_stack.sidecar
    sftp_stack.sidecar.stop()
    start_sftp(sftp_stack)

    assert host_public_key(sftp_stack) == before
    out = openssh_sftp(
        sftp_stack, "alice", "ls\n", password=USERS["alice"]
    )  # strict check
    assert out.returncode == 0, out.stderr
    blob = base64.b64decode(before.split()[1])
    fp = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert printed.stdout.strip() == f"ssh-ed25519 SHA256:{fp}"


def wait_events(
    s: Stack, name: str, wanted: set[tuple[str, str]], timeout: float = 15
) -> list[dict]:
    """The events whose path holds ``name``, once every (type, path) of ``wanted`` is in."""
    deadline = time.monotonic() + timeout
    while True:
        mine = [e for e in read_events(s) if name in (e["path"] or "")]
        seen = {(e["type"], e["path"]) for e in mine}
        if wanted <= seen or time.monotonic() > deadline:
            assert wanted <= seen, seen
            return mine
        time.sleep(0.2)


@pytest.fixture(scope="module")
def user_keys(
    sftp_stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """An ed25519 key per demo user, added in Django with ``djftpd_keys``."""
    keys = {}
    for user in USERS:
        key = tmp_path_factory.mktemp(f"key-{user}") / "id_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", user, "-f", str(key)],
            check=True,
        )
        sftp_stack.manage("djftpd_keys", "add", user, f"{key}.pub")
        keys[user] = key
    return keys


def lftp(s: Stack, user: str, commands: str) -> subprocess.CompletedProcess:
    """lftp's sftp:// (it runs OpenSSH's ssh on a pty and answers its password prompt),
    stopping at the first failed command, the host key checked strictly."""
    ssh = (
        f"ssh -a -x -o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts(s)}"
        " -o PreferredAuthentications=password -o PubkeyAuthentication=no"
        " -o ConnectTimeout=10"
    )
    script = (
        f"set sftp:connect-program '{ssh}'; set cmd:fail-exit yes; set net:max-retries 1;"
        f" set net:timeout 10; open -u {user},{USERS[user]}"
        f" sftp://127.0.0.1:{s.sftp_port}; {commands}"  # type: ignore[attr-defined]
    )
    return subprocess.run(
        ["lftp", "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        cwd=s.workdir,
        env={**os.environ, "HOME": str(s.workdir)},  # no ~/.lftp of the machine's user
    )


@pytest.mark.skipif(not shutil.which("lftp"), reason="needs lftp")
def test_lftp_put_get_rename_mkdir_rm(sftp_stack: Stack) -> None:
    name = f"lftp-{uuid.uuid4().hex[:8]}"
    local = sftp_stack.workdir / f"{name}.txt"
    local.write_bytes(b"hello over lftp\n" * 5000)
    home = sftp_stack.home("alice")

    out = lftp(
        sftp_stack,
        "alice",
        f"put {local} -o {name}.txt; mkdir {name}; mv {name}.txt {name}/moved.txt;"
        f" get {name}/moved.txt -o {sftp_stack.workdir}/{name}.back;"
        f" put {local} -o {name}/gone.txt; rm {name}/gone.txt",
    )

    assert out.returncode == 0, out.stderr
    assert (home / name / "moved.txt").read_bytes() == local.read_bytes()
    assert not (home / name / "gone.txt").exists()
    assert not (home / f"{name}.txt").exists()
    assert (sftp_stack.workdir / f"{name}.back").read_bytes() == local.read_bytes()
    mine = wait_events(
        sftp_stack,
        name,
        {
            ("file_received", f"/{name}.txt"),
            ("directory_created", f"/{name}"),
            ("file_renamed", f"/{name}.txt"),
            ("file_sent", f"/{name}/moved.txt"),
            ("file_deleted", f"/{name}/gone.txt"),
        },
    )
    assert {e["protocol"] for e in mine} == {"sftp"}
    renamed = next(e for e in mine if e["type"] == "file_renamed")
    assert renamed["to_path"] == f"/{name}/moved.txt"


@pytest.mark.skipif(not shutil.which("lftp"), reason="needs lftp")
def test_lftp_refused_upload_and_symlink(sftp_stack: Stack) -> None:
    name = f"lftp-{uuid.uuid4().hex[:8]}"
    local = sftp_stack.workdir / f"{name}.txt"
    local.write_text("bob may not")
    sftp_stack.home("bob").mkdir(parents=True, exist_ok=True)
    (sftp_stack.home("alice") / f"{name}.txt").write_text("alice's")

    bob = lftp(sftp_stack, "bob", f"put {local} -o {name}.txt")
    link = lftp(sftp_stack, "alice", f"ln -s {name}.txt {name}.lnk")

    assert bob.returncode != 0
    assert "permission denied" in bob.stderr.lower(), bob.stderr
    assert not (sftp_stack.home("bob") / f"{name}.txt").exists()
    assert link.returncode != 0
    assert "permission denied" in link.stderr.lower(), link.stderr
    assert not (sftp_stack.home("alice") / f"{name}.lnk").is_symlink()


def scp(
    s: Stack, key: Path, *paths: str, legacy: bool = False
) -> subprocess.CompletedProcess:
    """OpenSSH's scp with a key, over SFTP (``-s``) or the legacy protocol (``-O``)."""
    argv = ["scp", "-O" if legacy else "-s", "-B", *ssh_options(s, key), *paths]
    return run_client(s, argv)


def test_scp_over_sftp_upload_and_download_with_a_key(
    sftp_stack: Stack, user_keys: dict[str, Path]
) -> None:
    name = f"scp-{uuid.uuid4().hex[:8]}.bin"
    local = sftp_stack.workdir / name
    local.write_bytes(bytes(range(256)) * 1000)
    remote = f"alice@127.0.0.1:{name}"

    up = scp(sftp_stack, user_keys["alice"], str(local), remote)
    down = scp(sftp_stack, user_keys["alice"], remote, f"{local}.back")

    assert up.returncode == 0, up.stderr
    assert down.returncode == 0, down.stderr
    assert (sftp_stack.home("alice") / name).read_bytes() == local.read_bytes()
    assert Path(f"{local}.back").read_bytes() == local.read_bytes()
    mine = wait_events(
        sftp_stack, name, {("file_received", f"/{name}"), ("file_sent", f"/{name}")}
    )
    received = next(e for e in mine if e["type"] == "file_received")
    assert (received["username"], received["protocol"], received["bytes"]) == (
        "alice",
        "sftp",
        256_000,
    )


def test_scp_upload_refused_for_read_only_bob(
    sftp_stack: Stack, user_keys: dict[str, Path]
) -> None:
    name = f"scp-{uuid.uuid4().hex[:8]}.txt"
    local = sftp_stack.workdir / name
    local.write_text("bob may not")
    (sftp_stack.home("bob")).mkdir(parents=True, exist_ok=True)
    (sftp_stack.home("bob") / "readme.txt").write_text("for bob")

    refused = scp(sftp_stack, user_keys["bob"], str(local), f"bob@127.0.0.1:{name}")
    legacy = scp(
        sftp_stack, user_keys["bob"], str(local), f"bob@127.0.0.1:{name}", legacy=True
    )
    down = scp(
        sftp_stack, user_keys["bob"], "bob@127.0.0.1:readme.txt", f"{local}.back"
    )

    assert refused.returncode != 0
    assert "permission denied" in refused.stderr.lower(), refused.stderr
    assert legacy.returncode != 0, "scp's legacy protocol runs a command: no exec"
    assert not (sftp_stack.home("bob") / name).exists()
    # The key logs bob in: only writing is refused.
    assert down.returncode == 0, down.stderr
    assert Path(f"{local}.back").read_text() == "for bob"
