"""Settings for djftpd, read from one ``DJFTPD`` dict in the project's settings.

For example your project's ``settings.py`` might look like this::

    DJFTPD = {
        "SECRET": os.environ["DJFTPD_SECRET"],         # shared with the sidecar, >= 32 bytes
        "DJANGO_URL": "http://127.0.0.1:8000/ftp/",    # where the sidecar reaches djftpd.urls
        "HOME_ROOT": "/srv/ftp",                       # every home lives under this directory
        "HOME_DIR": "/srv/ftp/{username}",             # or a callable(user) -> absolute path
        "PERMS": lambda user: "elradfmwMT" if user.is_staff else "elr",
        "WELCOME": "Welcome to example.com",           # or a callable(user) -> str
    }

Then read a value through ``app_settings``; it follows ``override_settings`` and the
pytest-django ``settings`` fixture::

    from djftpd.conf import app_settings
    app_settings.SECRET

The settings of djftpd 0.3 (``get_ftp_home_dir``, ``read_perms``, ``write_perms``,
``FTP_WELCOME_MSG``, ``FTP_PORT``, ``FTP_ADDRESS``, ``ftp_handler``) are read only here,
through :func:`legacy_setting`; the login policy that uses them (home, permissions, welcome,
limits) is :mod:`djftpd.policy`.
"""

from __future__ import annotations

import importlib
import logging
import os
from functools import cache
from types import ModuleType
from typing import Any

from django.conf import Settings, UserSettingsHolder, settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTINGS_NAME = "DJFTPD"

logger = logging.getLogger("djftpd")

#: Every permission letter djftpd knows (pyftpdlib's), in canonical order (DESIGN.md section 4).
PERM_LETTERS = "elradfmwMT"

DEFAULTS: dict[str, Any] = {
    # Shared HMAC secret, at least 32 bytes; required (system checks djftpd.E001/E002).
    "SECRET": None,
    # URL under which the sidecar reaches this app's URLs, ending with "/". Unset:
    # startftpserver keeps a DJFTPD_DJANGO_URL from its environment, else this default.
    "DJANGO_URL": "http://127.0.0.1:8000/ftp/",
    # Absolute directory every home lives under; passed to the sidecar as DJFTPD_HOME_ROOT.
    # None: the sidecar gets "/", any absolute home is accepted (check djftpd.W002).
    "HOME_ROOT": None,
    # callable(user) -> absolute path, or a template such as "/srv/ftp/{username}".
    # None: legacy get_ftp_home_dir(username), else HOME_ROOT/<username>.
    "HOME_DIR": None,
    # callable(user) -> permission letters, or a string of letters for everyone.
    # None: legacy read_perms/write_perms rule (superusers get both, others read_perms).
    "PERMS": None,
    # Text of the 230 reply: a string, or callable(user) -> str.
    # None: legacy FTP_WELCOME_MSG, else DEFAULT_WELCOME.
    "WELCOME": None,
    # Seconds the sidecar may cache a successful answer; None: the sidecar's own default.
    "TTL": None,
    # Control listener "host:port" of the sidecar. Unset: legacy FTP_ADDRESS/FTP_PORT, else this:
    # loopback, as djftpd 0.3 (FTP_ADDRESS "127.0.0.1"); the port is 2121, not 0.3's 21, so the
    # sidecar needs no root. Serve other hosts by setting it (check --deploy: W010, W011).
    "LISTEN": "127.0.0.1:2121",
    # Passive data port range announced by the sidecar (the binary's default, outside the
    # Kubernetes NodePort range 30000-32767).
    "PASSIVE_PORTS": "50000-50099",
    # Address announced in PASV replies (set it behind NAT or in Kubernetes); None: unset.
    "PUBLIC_HOST": None,
    # Path of the djftpd binary; None: $DJFTPD_BINARY, then "djftpd" on PATH.
    "SIDECAR_BINARY": None,
    # Ops base URLs of the running sidecars ("http://127.0.0.1:9121/"), told to purge their
    # auth cache when a user or FTP account changes. None: the ops listener of the sidecar
    # startftpserver starts (DJFTPD_OPS_LISTEN, default 127.0.0.1:9121); [] sends no purge
    # (check djftpd.W003).
    "SIDECAR_URLS": None,
    # Permission a user needs to log in, e.g. "djftpd.use_ftp"; None: every active user.
    "REQUIRE_PERMISSION": None,
    # Ops listener "host:port" of the sidecar (/healthz, /metrics); None: the sidecar's default.
    "OPS_LISTEN": None,
    # FTPS: certificate and key files (PEM) and the mode: "off", "explicit" (AUTH TLS
    # offered), "required" (no login or data without TLS) or "implicit". None: the sidecar's
    # defaults (DJFTPD_TLS_* in its environment).
    "TLS_CERT": None,
    "TLS_KEY": None,
    "TLS_MODE": None,
    # Directory for what the sidecar keeps across restarts. None: BASE_DIR/.djftpd when the
    # project's settings define BASE_DIR, else $XDG_STATE_HOME/djftpd (~/.local/state/djftpd).
    "STATE_DIR": None,
    # Event spool of the sidecar (DJFTPD_SPOOL_DIR): events wait there while Django is
    # unreachable and survive a restart. None: STATE_DIR/spool; "" keeps them in memory only.
    "SPOOL_DIR": None,
    # Keep every event from the sidecar as an FTPEvent row (admin: FTP events). Off: only
    # the signals are sent (and a small receipt per event id, for idempotence).
    "ACTIVITY_LOG": True,
    # With the activity log on: connect and disconnect get no FTPEvent row of their own (the
    # logout row carries the session's length), and an event with a row needs no receipt
    # (the row is it). Half the rows per FTP session; the signals are the same.
    "COMPACT_ACTIVITY_LOG": False,
    # Where homes live, as the sidecar's DJFTPD_STORAGE: "local" or "s3://BUCKET[/PREFIX]"
    # (a home "/alice" is then keys PREFIX/alice/...). djftpd.storage.ftp_storage(user) reads it.
    "STORAGE": "local",
    # Extra environment variables for the sidecar, e.g. {"DJFTPD_TLS_MODE": "explicit"}.
    "ENV": {},
    # Show the FTP account inline on the user admin page (Django's own UserAdmin only).
    "USER_ADMIN_INLINE": True,
}

#: Welcome text when neither DJFTPD["WELCOME"] nor FTP_WELCOME_MSG is set (djftpd 0.3's text).
DEFAULT_WELCOME = "Welcome to the Django-FTP Server"

#: djftpd 0.3 settings still honoured, and the DJFTPD key that replaces each (check W001);
#: None: replaced by the signals of djftpd.signals rather than by a setting.
LEGACY: dict[str, str | None] = {
    "get_ftp_home_dir": "HOME_DIR",
    "read_perms": "PERMS",
    "write_perms": "PERMS",
    "FTP_WELCOME_MSG": "WELCOME",
    "FTP_ADDRESS": "LISTEN",
    "FTP_PORT": "LISTEN",
    "ftp_handler": None,
}

# djftpd 0.3's own defaults, used when only some of the legacy settings are set.
LEGACY_READ_PERMS = "elr"
LEGACY_WRITE_PERMS = "adfmw"
LEGACY_FTP_ADDRESS = "127.0.0.1"
LEGACY_FTP_PORT = 21

#: Returned by legacy_setting() for a setting the project does not set.
MISSING: Any = object()


class AppSettings:
    """The ``DJFTPD`` dict with defaults, as attributes; unknown names raise AttributeError."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        """The project's ``DJFTPD`` dict as given (empty when unset)."""
        if not hasattr(self, "_user_settings"):
            value = getattr(settings, SETTINGS_NAME, None) or {}
            if not isinstance(value, dict):
                raise ImproperlyConfigured(f"The {SETTINGS_NAME} setting must be a dict.")
            self._user_settings = value
        return self._user_settings

    def is_set(self, name: str) -> bool:
        """Whether the project sets ``DJFTPD[name]`` itself."""
        return name in self.user_settings

    def __getattr__(self, name: str) -> Any:
        if name not in self.defaults:
            raise AttributeError(f"Invalid djftpd setting: {name!r}")
        value = self.user_settings.get(name, self.defaults[name])
        self._cached.add(name)
        setattr(self, name, value)
        return value

    def reload(self) -> None:
        """Forget cached values; the next access reads ``settings.DJFTPD`` again."""
        for name in self._cached:
            delattr(self, name)
        self._cached.clear()
        if hasattr(self, "_user_settings"):
            del self._user_settings


app_settings = AppSettings(DEFAULTS)


@receiver(setting_changed)
def reload_app_settings(*, setting: str, **kwargs: Any) -> None:
    """Keep ``app_settings`` in step with ``override_settings`` and the ``settings`` fixture."""
    if setting == SETTINGS_NAME:
        app_settings.reload()


def _project_settings_module() -> str | None:
    """The name of the project's settings module, also under ``override_settings`` (whose
    ``SETTINGS_MODULE`` is None); None after ``settings.configure()``, whatever
    ``DJANGO_SETTINGS_MODULE`` says."""
    holder = getattr(settings, "_wrapped", None)
    while isinstance(holder, UserSettingsHolder):
        holder = holder.default_settings
    return holder.SETTINGS_MODULE if isinstance(holder, Settings) else None


@cache
def _settings_module(name: str) -> ModuleType:
    return importlib.import_module(name)


def legacy_setting(name: str) -> Any:
    """Return the djftpd 0.3 setting ``name``, or ``MISSING`` when the project does not set it.

    Django copies only UPPERCASE names into ``django.conf.settings``, so a lowercase legacy name
    (``read_perms``) is looked up as its uppercase spelling there first (``READ_PERMS``), then as
    an attribute of the settings module itself. Legacy values are read live, never cached.
    """
    value = getattr(settings, name.upper(), MISSING)
    if value is not MISSING or name.isupper():
        return value
    module_name = _project_settings_module()
    if not module_name:
        return MISSING
    return getattr(_settings_module(module_name), name, MISSING)


def legacy_settings_in_use() -> list[str]:
    """Names of the djftpd 0.3 settings the project sets, in ``LEGACY`` order."""
    return [name for name in LEGACY if legacy_setting(name) is not MISSING]


def resolve_listen() -> str:
    """Sidecar listen address: ``DJFTPD["LISTEN"]`` -> legacy FTP_ADDRESS/FTP_PORT -> default.

    With only one of the legacy pair set, the other keeps djftpd 0.3's default
    (``127.0.0.1``, port 21).
    """
    address = legacy_setting("FTP_ADDRESS")
    port = legacy_setting("FTP_PORT")
    if app_settings.is_set("LISTEN") or (address is MISSING and port is MISSING):
        return str(app_settings.LISTEN)
    host = LEGACY_FTP_ADDRESS if address is MISSING else str(address)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{LEGACY_FTP_PORT if port is MISSING else port}"


def resolve_state_dir() -> str:
    """``DJFTPD["STATE_DIR"]``, else ``BASE_DIR/.djftpd``, else the user's XDG state directory."""
    if app_settings.STATE_DIR:
        return os.fspath(app_settings.STATE_DIR)
    base_dir = getattr(settings, "BASE_DIR", None)
    if base_dir:
        return os.path.join(os.fspath(base_dir), ".djftpd")
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(state_home, "djftpd")


def resolve_spool_dir() -> str:
    """The sidecar's event spool: ``DJFTPD["SPOOL_DIR"]`` ("" for none), else STATE_DIR/spool.

    Absolute, since the sidecar refuses a relative DJFTPD_SPOOL_DIR."""
    spool = app_settings.SPOOL_DIR
    if spool is None:
        spool = os.path.join(resolve_state_dir(), "spool")
    return os.path.abspath(os.fspath(spool)) if spool else ""


def resolve_ttl() -> int | None:
    """``DJFTPD["TTL"]`` validated: None or a non-negative int of seconds."""
    ttl = app_settings.TTL
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0):
        raise ImproperlyConfigured(f'DJFTPD["TTL"] must be None or seconds >= 0, got {ttl!r}.')
    return ttl


def secret_bytes() -> bytes:
    """The shared secret as bytes; ImproperlyConfigured when unset (check djftpd.E001)."""
    secret = app_settings.SECRET
    if not secret or not isinstance(secret, str | bytes):
        raise ImproperlyConfigured('DJFTPD["SECRET"] is not set to a string.')
    return secret.encode() if isinstance(secret, str) else secret
