"""Find, configure and run the djftpd sidecar binary (the Go FTP server).

Shared by ``manage.py startftpserver`` and :func:`djftpd.create_django_ftpserver`::

    from djftpd.sidecar import build_env, cli_overrides, run_foreground

    env = build_env(cli_overrides(listen="127.0.0.1:2121"))
    exit_code = run_foreground(env)   # blocks; SIGINT/SIGTERM/SIGHUP reach the sidecar

The binary is ``DJFTPD["SIDECAR_BINARY"]``, else ``$DJFTPD_BINARY``, else ``djftpd`` on PATH.
Its environment is the ``DJFTPD_*`` variables built from the Django settings, plus only those
of ours it needs (:func:`passed_through`): never Django's own (``SECRET_KEY``,
``DATABASE_URL``, ...).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from djftpd.conf import (
    app_settings,
    resolve_listen,
    resolve_spool_dir,
    resolve_state_dir,
    secret_bytes,
)

#: Signals passed on to the sidecar while it runs in the foreground.
# SIGHUP only where it exists (not on Windows), so importing the app never fails.
FORWARDED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

INSTALL_HINT = (
    "Build it with `make build` in the djftpd repository, or install it with "
    "`go install github.com/djftpd/djftpd@latest`; then put it on PATH, or point "
    '$DJFTPD_BINARY or DJFTPD["SIDECAR_BINARY"] at it.'
)


class SidecarNotFound(Exception):
    """The djftpd binary cannot be found; the message says where we looked and how to get it."""


def find_binary() -> str:
    """Path of the sidecar: DJFTPD["SIDECAR_BINARY"] -> $DJFTPD_BINARY -> ``djftpd`` on PATH."""
    for source, configured in (
        ('DJFTPD["SIDECAR_BINARY"]', app_settings.SIDECAR_BINARY),
        ("$DJFTPD_BINARY", os.environ.get("DJFTPD_BINARY")),
    ):
        if configured:
            path = shutil.which(os.fspath(configured))
            if path is None:
                raise SidecarNotFound(
                    f"{source} is {os.fspath(configured)!r}, which is not an executable file. "
                    f"{INSTALL_HINT}"
                )
            return path
    path = shutil.which("djftpd")
    if path is None:
        raise SidecarNotFound(f"The djftpd sidecar binary is not on PATH. {INSTALL_HINT}")
    return path


#: DJFTPD_HOME_ROOT when DJFTPD["HOME_ROOT"] is not set: any absolute home is accepted.
UNCONFINED_HOME_ROOT = "/"

#: Values of DJFTPD_TLS_MODE (DESIGN.md section 4).
TLS_MODES = ("off", "explicit", "required", "implicit")


def check_tls_mode(mode: str, source: str) -> str:
    """``mode`` if it is one of TLS_MODES; ImproperlyConfigured naming ``source`` otherwise."""
    if mode not in TLS_MODES:
        raise ImproperlyConfigured(f"{source} must be one of {', '.join(TLS_MODES)}, got {mode!r}.")
    return mode


def cli_overrides(
    *,
    listen: str | None = None,
    passive_ports: str | None = None,
    public_host: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_mode: str | None = None,
) -> dict[str, str]:
    """Environment overrides from command-line style options; None means not given."""
    values = {
        "DJFTPD_LISTEN": listen,
        "DJFTPD_PASSIVE_PORTS": passive_ports,
        "DJFTPD_PUBLIC_HOST": public_host,
        "DJFTPD_TLS_CERT": tls_cert,
        "DJFTPD_TLS_KEY": tls_key,
        "DJFTPD_TLS_MODE": tls_mode and check_tls_mode(tls_mode, "--tls-mode"),
    }
    return {name: value for name, value in values.items() if value is not None}


#: Variables of our environment the sidecar gets as they are: what any Go program reads
#: (locale, time zone, temporary files, CA certificates, proxies, the Go runtime's knobs).
PASSED_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
        "SSL_CERT_FILE", "SSL_CERT_DIR",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "GODEBUG", "GOGC", "GOMAXPROCS", "GOMEMLIMIT", "GOTRACEBACK",
    }
)  # fmt: skip
#: Prefixes passed through: the sidecar's own settings, the AWS SDK's chain (S3 storage), locale.
PASSED_PREFIXES = ("DJFTPD_", "AWS_", "LC_")


def passed_through(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` the sidecar gets (PASSED_NAMES and PASSED_PREFIXES)."""
    return {
        name: value
        for name, value in environ.items()
        if name in PASSED_NAMES or name.startswith(PASSED_PREFIXES)
    }


def build_env(
    overrides: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The sidecar's environment.

    Starts from what it needs of ``base`` (default ``os.environ``; see :func:`passed_through`),
    then sets the variables derived from the settings, then ``DJFTPD["ENV"]``, then
    ``overrides`` (the command line) last. Exceptions: without ``DJFTPD["DJANGO_URL"]``, a
    ``DJFTPD_DJANGO_URL`` in ``base`` wins over the default (a project written for djftpd 0.3
    has no setting for it), and so does a ``DJFTPD_SPOOL_DIR`` without ``DJFTPD["SPOOL_DIR"]``;
    without ``DJFTPD["HOME_ROOT"]`` (nor ``DJFTPD_HOME_ROOT`` in ``base``), the home root is ``/``.
    ``DJFTPD_STATE_DIR`` (where the sidecar keeps its generated SFTP host key) is
    ``DJFTPD["STATE_DIR"]``'s directory, unless inherited and the setting is not set.
    """
    secret = secret_bytes()
    try:
        secret_text = secret.decode()
    except UnicodeDecodeError:
        raise ImproperlyConfigured('DJFTPD["SECRET"] must be UTF-8 text.') from None
    env = passed_through(os.environ if base is None else base)
    # DJFTPD["DJANGO_URL"] when set; else a DJFTPD_DJANGO_URL already in the environment (a
    # project written for djftpd 0.3 has no setting for it); else the default.
    django_url = app_settings.DJANGO_URL
    if not app_settings.is_set("DJANGO_URL") and env.get("DJFTPD_DJANGO_URL"):
        django_url = env["DJFTPD_DJANGO_URL"]
    env.update(
        DJFTPD_DJANGO_URL=str(django_url),
        DJFTPD_SECRET=secret_text,
        DJFTPD_LISTEN=resolve_listen(),
        DJFTPD_PASSIVE_PORTS=str(app_settings.PASSIVE_PORTS),
    )
    optional = {
        "DJFTPD_HOME_ROOT": app_settings.HOME_ROOT,
        "DJFTPD_PUBLIC_HOST": app_settings.PUBLIC_HOST,
        "DJFTPD_OPS_LISTEN": app_settings.OPS_LISTEN,
        "DJFTPD_TLS_CERT": app_settings.TLS_CERT,
        "DJFTPD_TLS_KEY": app_settings.TLS_KEY,
        "DJFTPD_TLS_MODE": app_settings.TLS_MODE
        and check_tls_mode(app_settings.TLS_MODE, 'DJFTPD["TLS_MODE"]'),
    }
    env.update({name: os.fspath(value) for name, value in optional.items() if value})
    # The sidecar requires a home root. Without DJFTPD["HOME_ROOT"] (and none inherited), "/":
    # homes then need only be absolute (check djftpd.W002).
    env.setdefault("DJFTPD_HOME_ROOT", UNCONFINED_HOME_ROOT)
    # DJFTPD["STORAGE"] when set; else a DJFTPD_STORAGE inherited, else the sidecar's "local".
    if app_settings.is_set("STORAGE"):
        env["DJFTPD_STORAGE"] = str(app_settings.STORAGE)
    # Events survive a restart by default: a spool under the project's state directory.
    if app_settings.is_set("SPOOL_DIR") or "DJFTPD_SPOOL_DIR" not in env:
        env["DJFTPD_SPOOL_DIR"] = resolve_spool_dir()
    # The same state directory keeps the SFTP host key generated on first start.
    if app_settings.is_set("STATE_DIR") or "DJFTPD_STATE_DIR" not in env:
        env["DJFTPD_STATE_DIR"] = os.path.abspath(resolve_state_dir())
    env.update({str(name): str(value) for name, value in (app_settings.ENV or {}).items()})
    env.update(overrides or {})
    return env


def exit_status(returncode: int) -> int:
    """A process's exit code the way a shell reports it: 128 + N when killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


class Sidecar:
    """One sidecar process.

    ``serve_forever()`` starts it and blocks until it exits, returning its exit code; from the
    main thread it also forwards SIGINT/SIGTERM/SIGHUP to it. ``close()`` (from any thread)
    stops it with SIGTERM, which the sidecar answers with a graceful drain, then SIGKILL after
    ``timeout`` seconds. The sidecar runs in its own process group, so a terminal's Ctrl-C
    reaches it once, through us.
    """

    def __init__(
        self, env: Mapping[str, str], binary: str | None = None, args: Sequence[str] = ()
    ) -> None:
        self.command = [binary or find_binary(), *args]
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None
        # Re-entrant: the signal handler runs in the main thread, possibly while that thread
        # holds the lock inside start() (the child can be up before Popen returns).
        self._lock = threading.RLock()
        self._closed = False
        self._pending_signals: list[int] = []

    def start(self) -> None:
        """Start the process unless it runs already; RuntimeError after ``close()``."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this sidecar was closed")
            if self.process is not None:
                return
            group: dict[str, Any] = (
                {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
            )
            self.process = subprocess.Popen(self.command, env=self.env, **group)
            while self._pending_signals:
                self.process.send_signal(self._pending_signals.pop(0))

    def send_signal(self, signum: int) -> None:
        """Deliver ``signum`` to the sidecar; before it started, as soon as it starts."""
        with self._lock:
            if self.process is None:
                self._pending_signals.append(signum)
            elif self.process.poll() is None:
                self.process.send_signal(signum)

    def serve_forever(self) -> int:
        """Run the sidecar until it exits and return its exit code."""
        if threading.current_thread() is not threading.main_thread():
            self.start()
            return self.wait()
        with self._forwarding_signals():
            self.start()
            return self.wait()

    def wait(self) -> int:
        """Wait for the started process to exit and return its exit code."""
        if self.process is None:
            raise RuntimeError("the sidecar was not started")
        return exit_status(self.process.wait())

    def close(self, timeout: float = 30.0) -> int | None:
        """Stop the sidecar (SIGTERM, then SIGKILL after ``timeout``); its exit code, if run."""
        with self._lock:
            self._closed = True
            process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return exit_status(process.returncode)

    @contextmanager
    def _forwarding_signals(self) -> Iterator[None]:
        def forward(signum: int, frame: FrameType | None) -> None:
            self.send_signal(signum)

        previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def run_foreground(env: Mapping[str, str], binary: str | None = None) -> int:
    """Run the sidecar in the foreground with ``env``, forwarding signals; its exit code."""
    return Sidecar(env, binary).serve_forever()
