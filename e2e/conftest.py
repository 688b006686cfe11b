"""End-to-end fixtures: the real demo Django site under real gunicorn, and the real djftpd
binary started through ``manage.py startftpserver``, each on free loopback ports.

Like pytest-django's ``live_server``, the stack is session-scoped: start, wait for
readiness with a deadline, ``yield`` the addresses, terminate. A failing test gets the
processes' logs attached (see ``pytest_runtest_makereport``). Tests that stop Django
build their own stack with ``stack_factory`` so the shared one stays healthy.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "django_plugin" / "demo"
BINARY = Path(os.environ.get("DJFTPD_BINARY", REPO / "bin" / "djftpd"))
START_TIMEOUT = 30.0

USERS = {"alice": "alice-password", "bob": "bob-password"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args!r} exited with {proc.returncode} before {url} answered"
            )
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@dataclass
class Process:
    name: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class Stack:
    """One demo Django + one sidecar, with everything a test needs to reach them."""

    workdir: Path
    env: dict[str, str]
    site: Path = DEMO  # the Django project's directory (manage.py)
    wsgi: str = "demo.wsgi"
    django_port: int = 0
    ftp_port: int = 0
    ftps_port: int = 0  # implicit FTPS, when started with tls=True
    ops_port: int = 0
    processes: list[Process] = field(default_factory=list)
    django: Process | None = None
    sidecar: Process | None = None

    @property
    def home_root(self) -> Path:
        return self.workdir / "ftp"

    def home(self, user: str) -> Path:
        return self.home_root / user

    def url(self, user: str, path: str = "/") -> str:
        return f"ftp://{user}:{USERS[user]}@127.0.0.1:{self.ftp_port}{path}"

    def manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.site,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        log = self.workdir / f"{name}.log"
        proc = subprocess.Popen(
            argv,
            cwd=self.site,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        p = Process(name, proc, log)
        self.processes.append(p)
        return p

    def start_django(self) -> None:
        if not self.django_port:
            self.django_port = free_port()
        gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
        assert gunicorn, "gunicorn is not installed in this venv (make venv)"
        self.django = self.spawn(
            "gunicorn",
            [
                gunicorn,
                self.wsgi,
                "-b",
                f"127.0.0.1:{self.django_port}",
                "--workers",
                "2",
            ],
            self.env,
        )
        wait_http(f"http://127.0.0.1:{self.django_port}/admin/login/", self.django.proc)

    def stop_django(self) -> None:
        assert self.django
        self.django.stop()

    @property
    def cert(self) -> Path:
        return self.workdir / "cert.pem"

    def _make_cert(self) -> None:
        if self.cert.exists():
            return
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(self.workdir / "key.pem"),
                "-out",
                str(self.cert),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start_sidecar(self, *, tls: bool = False, **extra_env: str) -> None:
        """Start the sidecar; with ``tls``, FTPS is offered explicitly on the control port
        and implicitly on ``ftps_port`` (DJFTPD_TLS_MODE=implicit), plain FTP still allowed."""
        # ops_port is chosen by new_stack, so Django knows it (DJFTPD_SIDECAR_URLS).
        self.ftp_port, self.ops_port = free_port(), self.ops_port or free_port()
        passive = 40000 + secrets.randbelow(2000) * 10
        env = dict(self.env)
        env.update(
            DJFTPD_BINARY=str(BINARY),
            DJFTPD_OPS_LISTEN=f"127.0.0.1:{self.ops_port}",
            DJFTPD_LOG_LEVEL="debug",
            DJFTPD_FAILED_LOGIN_DELAY="100ms",
        )
        # A spool of this stack's own (the 0.3 site's default would be in the repository).
        env.setdefault("DJFTPD_SPOOL_DIR", str(self.workdir / "spool"))
        if tls:
            self._make_cert()
            self.ftps_port = free_port()
            env.update(
                DJFTPD_TLS_MODE="implicit",
                DJFTPD_TLS_CERT=str(self.cert),
                DJFTPD_TLS_KEY=str(self.workdir / "key.pem"),
                DJFTPD_IMPLICIT_LISTEN=f"127.0.0.1:{self.ftps_port}",
            )
        env.update(extra_env)
        self.sidecar = self.spawn(
            "sidecar",
            [
                sys.executable,
                "manage.py",
                "startftpserver",
                "--listen",
                f"127.0.0.1:{self.ftp_port}",
                "--passive-ports",
                f"{passive}-{passive + 9}",
            ],
            env,
        )
        wait_http(f"http://127.0.0.1:{self.ops_port}/readyz", self.sidecar.proc)

    def logs(self) -> str:
        return "\n".join(
            f"----- {p.name} -----\n{p.log.read_text(errors='replace')[-6000:]}"
            for p in self.processes
            if p.log.exists()
        )

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()


def new_stack(workdir: Path, extra_env: dict[str, str] | None = None) -> Stack:
    assert BINARY.exists(), f"{BINARY} is missing: run `make build` first"
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(extra_env or {})
    django_port, ops_port = free_port(), free_port()
    env.update(
        DJFTPD_DEMO_DIR=str(workdir),
        DJFTPD_SECRET=secrets.token_hex(32),
        DJFTPD_DJANGO_URL=f"http://127.0.0.1:{django_port}/ftp/",
        DJFTPD_SIDECAR_URLS=f"http://127.0.0.1:{ops_port}/",  # cache purge push
        PYTHONUNBUFFERED="1",
    )
    stack = Stack(workdir=workdir, env=env, django_port=django_port, ops_port=ops_port)
    stack.manage("migrate", "--noinput")
    stack.manage("demo_users")
    return stack


_stacks: list[Stack] = []


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shared demo Django and sidecar; tests must leave Django running."""
    s = new_stack(tmp_path_factory.mktemp("stack"))
    _stacks.append(s)
    try:
        s.start_django()
        s.start_sidecar(tls=True)
        yield s
    finally:
        s.stop()
        _stacks.remove(s)


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[callable]:
    """Builds a private stack (not started) for tests that stop or break Django."""
    made: list[Stack] = []

    def make() -> Stack:
        s = new_stack(tmp_path / f"stack{len(made)}")
        made.append(s)
        _stacks.append(s)
        return s

    yield make
    for s in made:
        s.stop()
        _stacks.remove(s)


def _s3server_module():
    """django_plugin/tests/s3server.py: versitygw, the repository's pinned S3 server."""
    import importlib.util

    path = REPO / "django_plugin" / "tests" / "s3server.py"
    spec = importlib.util.spec_from_file_location("djftpd_s3server", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


s3server = _s3server_module()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """versitygw on a free loopback port with the bucket ``djftpd-test``."""
    yield from s3server.start(tmp_path_factory.mktemp("versitygw"))


def s3_env(server: object, prefix: str = "ftp") -> dict[str, str]:
    """What makes a stack keep its homes in the bucket (the demo switches on it)."""
    return {
        **server.env(),  # type: ignore[attr-defined]
        "DJFTPD_STORAGE": f"s3://{s3server.BUCKET}/{prefix}",
        "DJFTPD_S3_PATH_STYLE": "true",
    }


@pytest.fixture(scope="session")
def s3_stack(s3: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A demo Django and sidecar whose homes /alice and /bob are in the S3 bucket."""
    s = new_stack(tmp_path_factory.mktemp("s3stack"), extra_env=s3_env(s3))
    _stacks.append(s)
    try:
        s.start_django()
        s.start_sidecar()
        yield s
    finally:
        s.stop()
        _stacks.remove(s)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        for s in _stacks:
            report.sections.append(("process logs", s.logs()))
    return report
