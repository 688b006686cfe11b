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

The per-user values (home, perms, welcome) and the listen address also honour the settings of
djftpd 0.3 (``get_ftp_home_dir``, ``read_perms``, ``write_perms``, ``FTP_WELCOME_MSG``,
``FTP_PORT``, ``FTP_ADDRESS``, ``ftp_handler``). They are read only here, through
:func:`legacy_setting`. Per-user values are resolved with the precedence (DESIGN.md section 5)
the user's ``FTPAccount`` -> ``DJFTPD`` value -> legacy setting -> default::

    from djftpd.conf import resolve_home, resolve_perms, resolve_welcome
    resolve_home(user)     # "/srv/ftp/alice"
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from functools import cache
from types import ModuleType
from typing import Any

from django.conf import Settings, UserSettingsHolder, settings
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
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


def canonical_perms(letters: str) -> str:
    """Return ``letters`` deduplicated in canonical order; raise ValueError on unknown letters."""
    if not isinstance(letters, str):
        raise ValueError(f"permission letters must be a string, not {type(letters).__name__}")
    unknown = sorted(set(letters) - set(PERM_LETTERS))
    if unknown:
        raise ValueError(f"unknown permission letters {''.join(unknown)!r}")
    return "".join(letter for letter in PERM_LETTERS if letter in letters)


def unsafe_username(username: str) -> bool:
    """Whether ``username`` cannot be used as one directory name under HOME_ROOT."""
    return username in ("", ".", "..") or any(c in username for c in "/\\\x00")


class NoSafeHome(Exception):
    """The username cannot be turned into a home by a template: refuse the login."""


class HomeNotConfigured(NoSafeHome, ImproperlyConfigured):
    """The settings give no valid home (none set, relative, outside HOME_ROOT, a bad
    template): a fault of the site, logged at ERROR when raised. The auth view refuses the
    login like any NoSafeHome (401), never a 500; code expecting ImproperlyConfigured still
    gets one."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        logger.error("djftpd: %s Logins needing this home are refused until it is fixed.", message)


def has_home_source() -> bool:
    """Whether the settings give every user a home: HOME_ROOT, HOME_DIR or djftpd 0.3's
    get_ftp_home_dir (check djftpd.E005 when none is)."""
    return bool(
        app_settings.HOME_ROOT
        or app_settings.HOME_DIR is not None
        or legacy_setting("get_ftp_home_dir") is not MISSING
    )


def ftp_account(user: Any) -> Any:
    """The user's :class:`~djftpd.models.FTPAccount`, or None when there is none."""
    if user is None or getattr(user, "pk", None) is None:
        return None
    try:
        return user.ftp_account
    except (ObjectDoesNotExist, AttributeError):
        return None


def resolve_home(user: Any) -> str:
    """Absolute home directory of ``user``.

    ``FTPAccount.home_dir`` -> ``DJFTPD["HOME_DIR"]`` (callable(user) or ``"{username}"``
    template) -> legacy ``get_ftp_home_dir(username)`` -> ``HOME_ROOT/<username>``. Raises
    :class:`NoSafeHome` when a template would need an unsafe username (``..``, a slash), and
    :class:`HomeNotConfigured` (a NoSafeHome and an ImproperlyConfigured) when there is no
    home source or the result is relative or outside ``HOME_ROOT``.
    """
    username = user.get_username()
    home_dir = app_settings.HOME_DIR
    legacy_home = legacy_setting("get_ftp_home_dir")
    account = ftp_account(user)
    if account is not None and account.home_dir:
        source, home = "FTPAccount.home_dir", account.home_dir
    elif callable(home_dir):
        source, home = 'DJFTPD["HOME_DIR"]', home_dir(user)
    elif home_dir is None and legacy_home is not MISSING:
        source, home = "get_ftp_home_dir", legacy_home(username)
    elif home_dir is not None:
        source, home = 'DJFTPD["HOME_DIR"]', _fill_template(str(home_dir), username)
    elif app_settings.HOME_ROOT:
        template = os.path.join(app_settings.HOME_ROOT, "{username}")
        source, home = 'DJFTPD["HOME_ROOT"]', _fill_template(template, username)
    else:
        raise HomeNotConfigured(
            'Set DJFTPD["HOME_ROOT"] (or DJFTPD["HOME_DIR"]) so djftpd can give each user a home.'
        )
    return _checked_home(home, source)


def _fill_template(template: str, username: str) -> str:
    if unsafe_username(username):
        raise NoSafeHome(username)
    try:
        return template.format(username=username)
    except (KeyError, IndexError, ValueError) as exc:
        raise HomeNotConfigured(
            f'DJFTPD["HOME_DIR"] {template!r} is not a valid "{{username}}" template.'
        ) from exc


def _checked_home(home: Any, source: str) -> str:
    """``home`` normalised; HomeNotConfigured unless absolute and inside HOME_ROOT."""
    if not isinstance(home, str | os.PathLike) or not os.path.isabs(home):
        raise HomeNotConfigured(f"{source} must give an absolute path, got {home!r}.")
    home = os.path.normpath(os.fspath(home))
    root = app_settings.HOME_ROOT
    if root and not os.path.isabs(root):
        raise HomeNotConfigured(f'DJFTPD["HOME_ROOT"] must be an absolute path, got {root!r}.')
    if root and os.path.commonpath([home, os.path.normpath(root)]) != os.path.normpath(root):
        raise HomeNotConfigured(
            f'{source} gave {home!r}, which is outside DJFTPD["HOME_ROOT"] {root!r}.'
        )
    return home


def legacy_perms(user: Any) -> str:
    """djftpd 0.3's rule: superusers get read_perms and write_perms, others read_perms.

    0.3 assigned ``write_perms`` to ``read_perms`` by mistake; here the two are united.
    """
    read = legacy_setting("read_perms")
    read = LEGACY_READ_PERMS if read is MISSING else read
    if not user.is_superuser:
        return canonical_perms(read)
    write = legacy_setting("write_perms")
    write = LEGACY_WRITE_PERMS if write is MISSING else write
    return canonical_perms(read + write)


def resolve_perms(user: Any) -> str:
    """Permission letters of ``user`` in canonical order.

    ``FTPAccount.perms`` -> ``DJFTPD["PERMS"]`` (callable(user) or letters) -> legacy rule
    (:func:`legacy_perms`, also the default). Unknown letters raise ImproperlyConfigured:
    never send them to the sidecar.
    """
    perms = app_settings.PERMS
    account = ftp_account(user)
    if account is not None and account.perms:
        perms = account.perms
    try:
        if perms is None:
            return legacy_perms(user)
        return canonical_perms(perms(user) if callable(perms) else perms)
    except ValueError as exc:
        raise ImproperlyConfigured(f"djftpd permission settings: {exc}.") from exc


def resolve_welcome(user: Any) -> str:
    """Welcome text: ``FTPAccount.welcome`` -> ``DJFTPD["WELCOME"]`` -> legacy
    ``FTP_WELCOME_MSG`` -> DEFAULT_WELCOME."""
    account = ftp_account(user)
    if account is not None and account.welcome:
        return str(account.welcome)
    welcome: str | Callable[[Any], str] | None = app_settings.WELCOME
    if welcome is None:
        legacy = legacy_setting("FTP_WELCOME_MSG")
        welcome = DEFAULT_WELCOME if legacy is MISSING else legacy
    return str(welcome(user) if callable(welcome) else welcome)


def resolve_limits(user: Any) -> tuple[int | None, int | None]:
    """``(quota_bytes, max_sessions)`` of ``user`` from the FTPAccount; None: no limit."""
    account = ftp_account(user)
    if account is None:
        return None, None
    return account.quota_bytes, account.max_sessions


def account_disabled(user: Any) -> bool:
    """Whether the user has an FTPAccount with ``enabled=False`` (always refused)."""
    account = ftp_account(user)
    return account is not None and not account.enabled


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
