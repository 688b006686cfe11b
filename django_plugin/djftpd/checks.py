"""System checks of djftpd, run by ``manage.py check`` and at start-up::

    $ python manage.py check
    ?: (djftpd.E002) DJFTPD["SECRET"] is shorter than 32 bytes.
        HINT: Generate one with: python -c "import secrets; print(secrets.token_hex(32))"

Ids are stable: E001 secret missing, E002 secret too short, E003 invalid permission letters,
E004 URLs not mounted, E005 no home source at all (every login refused), E006
``DJFTPD["COMPACT_ACTIVITY_LOG"]`` not a bool, W001 a djftpd 0.3
setting in use, W002 no ``DJFTPD["HOME_ROOT"]`` while HOME_DIR or get_ftp_home_dir gives homes
(the sidecar then accepts any absolute home), W003 ``DJFTPD["SIDECAR_URLS"]`` set empty (no
cache purge is sent), W004 SIDECAR_URLS unset and no fixed ops port to default to, W005 a key
of ``DJFTPD`` that djftpd does not know (a typo), W006 the host of ``DJFTPD["DJANGO_URL"]``
not in ALLOWED_HOSTS (every login would get 400), W007 SECURE_SSL_REDIRECT would redirect the
sidecar's plain-HTTP requests (301), W012 an ``ftp_handler`` attribute djftpd
ignores; with ``check --deploy`` also W010 plain FTP beyond loopback, W011 FTPS off, W013 no
``REQUIRE_PERMISSION`` (a password alone opens FTP, whatever MFA the site has).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import ImproperlyConfigured
from django.http.request import validate_host
from django.urls import NoReverseMatch, reverse

from djftpd.conf import (
    DEFAULTS,
    LEGACY,
    MISSING,
    PERM_LETTERS,
    app_settings,
    legacy_setting,
    legacy_settings_in_use,
    resolve_listen,
    secret_bytes,
)
from djftpd.policy import canonical_perms, has_home_source
from djftpd.sidecar_client import local_sidecar_url, ops_listen

MIN_SECRET_BYTES = 32


class Messages:
    SECRET_MISSING = 'DJFTPD["SECRET"] is not set to a string; the sidecar cannot be trusted.'
    SECRET_TOO_SHORT = f'DJFTPD["SECRET"] is shorter than {MIN_SECRET_BYTES} bytes.'
    PERMS_INVALID = "{setting} is not a valid set of FTP permission letters: {problem}."
    URLS_NOT_MOUNTED = "The djftpd URLs are not mounted: reverse('djftpd:auth') fails."
    LEGACY_SETTING = "The djftpd 0.3 setting {name} is deprecated."
    HOME_ROOT_UNSET = (
        'DJFTPD["HOME_ROOT"] is not set: startftpserver gives the sidecar DJFTPD_HOME_ROOT="/", '
        "so any absolute home is accepted."
    )
    NO_SIDECAR_URLS = (
        'DJFTPD["SIDECAR_URLS"] is empty: no sidecar is told to purge its login cache, so a '
        "changed password or a deactivated user keeps working over FTP until the cache expires."
    )
    NO_LOCAL_SIDECAR = (
        'DJFTPD["SIDECAR_URLS"] is not set and the sidecar\'s ops listener ({listen!r}) has no '
        "fixed port to default to: no cache purge is sent."
    )
    UNKNOWN_KEY = 'DJFTPD["{key}"] is not a djftpd setting; it is ignored.'
    NO_HOME_SOURCE = (
        'No home directory source is set (DJFTPD["HOME_ROOT"], DJFTPD["HOME_DIR"] or '
        "get_ftp_home_dir): every FTP login is refused."
    )
    PLAIN_FTP_EXPOSED = (
        "startftpserver listens on {listen}, beyond loopback, and TLS is {mode!r}: FTP clients "
        "may send passwords in clear text."
    )
    TLS_OFF = "FTPS is off: FTP logins send Django passwords in clear text."
    LEGACY_HANDLER_ATTRIBUTE = "ftp_handler sets {name}, which djftpd ignores."
    NO_FTP_PERMISSION_REQUIRED = (
        'DJFTPD["REQUIRE_PERMISSION"] is not set: every active user can log in over FTP with '
        "a password alone, bypassing any second factor (django-otp, allauth MFA)."
    )
    DJANGO_URL_HOST_NOT_ALLOWED = (
        "The sidecar reaches Django at {url}, but its host {host!r} is not in ALLOWED_HOSTS: "
        "every FTP login would get 400 Bad Request."
    )
    DJANGO_URL_REDIRECTED = (
        "The sidecar reaches Django at {url} over plain HTTP, and SECURE_SSL_REDIRECT would "
        "answer its POSTs with 301: every FTP login would fail."
    )
    COMPACT_NOT_BOOL = 'DJFTPD["COMPACT_ACTIVITY_LOG"] is {value!r}, not True or False.'


class Hints:
    SECRET_MISSING = (
        'Set DJFTPD = {"SECRET": ...} to the value the sidecar gets as DJFTPD_SECRET, '
        'e.g. python -c "import secrets; print(secrets.token_hex(32))".'
    )
    SECRET_TOO_SHORT = 'Generate one with: python -c "import secrets; print(secrets.token_hex(32))"'
    PERMS_INVALID = f"Use letters among {PERM_LETTERS!r}, or a callable(user) returning them."
    URLS_NOT_MOUNTED = 'Add path("ftp/", include("djftpd.urls")) to your ROOT_URLCONF.'
    LEGACY_SETTING = 'Move it to DJFTPD["{new}"].'
    LEGACY_FTP_HANDLER = (
        "Connect receivers to the signals of djftpd.signals (ftp_login, ftp_file_received, ...) "
        "instead; the handler's on_* methods are still called meanwhile."
    )
    HOME_ROOT_UNSET = (
        'Set DJFTPD["HOME_ROOT"] to the directory holding every home, e.g. "/srv/ftp"; the '
        "sidecar then refuses any home outside it."
    )
    NO_SIDECAR_URLS = (
        "List the ops URL of every sidecar replica, e.g. "
        '"SIDECAR_URLS": ["http://127.0.0.1:9121/"], or remove the key to use the local '
        'sidecar startftpserver starts; if no purge is wanted, add "djftpd.W003" to '
        "SILENCED_SYSTEM_CHECKS."
    )
    NO_LOCAL_SIDECAR = (
        'Set DJFTPD["SIDECAR_URLS"] to the ops URL of every sidecar replica, or give '
        'DJFTPD["OPS_LISTEN"] a fixed "host:port".'
    )
    UNKNOWN_KEY = "The settings are listed in djftpd.conf.DEFAULTS and the README."
    UNKNOWN_KEY_NEAR = 'Did you mean DJFTPD["{near}"]?'
    NO_HOME_SOURCE = (
        'Set DJFTPD["HOME_ROOT"] to the directory holding every home, e.g. "/srv/ftp": each '
        'user gets HOME_ROOT/<username>, or what DJFTPD["HOME_DIR"] gives inside it.'
    )
    PLAIN_FTP_EXPOSED = (
        'Set DJFTPD["TLS_MODE"] = "required" with DJFTPD["TLS_CERT"]/["TLS_KEY"], or listen on '
        "127.0.0.1 behind a TLS-terminating proxy."
    )
    TLS_OFF = (
        'Set DJFTPD["TLS_CERT"], DJFTPD["TLS_KEY"] and DJFTPD["TLS_MODE"] = "required". If the '
        "sidecar is configured by its own environment (Kubernetes), silence this check with "
        "SILENCED_SYSTEM_CHECKS."
    )
    LEGACY_HANDLER_ATTRIBUTE = "Use {replacement} instead."
    NO_FTP_PERMISSION_REQUIRED = (
        'Set DJFTPD["REQUIRE_PERMISSION"] = "djftpd.use_ftp" and grant it to the users (or '
        "groups) that may use FTP."
    )
    DJANGO_URL_HOST_NOT_ALLOWED = (
        'Add {host!r} to ALLOWED_HOSTS, or set DJFTPD["DJANGO_URL"] to a URL whose host is '
        "allowed (the sidecar sends that host in its requests)."
    )
    DJANGO_URL_REDIRECTED = (
        'Exempt the djftpd URLs, e.g. SECURE_REDIRECT_EXEMPT = [r"^{path}"], or give the sidecar '
        'an https:// DJFTPD["DJANGO_URL"].'
    )
    COMPACT_NOT_BOOL = (
        "True: connect and disconnect get no activity row (the logout row keeps the session's "
        "length) and each row is its event's receipt; False (the default): a row and a "
        "receipt per event."
    )


class Codes:
    SECRET_MISSING = "djftpd.E001"
    SECRET_TOO_SHORT = "djftpd.E002"
    PERMS_INVALID = "djftpd.E003"
    URLS_NOT_MOUNTED = "djftpd.E004"
    NO_HOME_SOURCE = "djftpd.E005"
    COMPACT_NOT_BOOL = "djftpd.E006"
    NO_SIDECAR_URLS = "djftpd.W003"
    NO_LOCAL_SIDECAR = "djftpd.W004"
    UNKNOWN_KEY = "djftpd.W005"
    LEGACY_SETTING = "djftpd.W001"
    HOME_ROOT_UNSET = "djftpd.W002"
    PLAIN_FTP_EXPOSED = "djftpd.W010"
    TLS_OFF = "djftpd.W011"
    LEGACY_HANDLER_ATTRIBUTE = "djftpd.W012"
    NO_FTP_PERMISSION_REQUIRED = "djftpd.W013"
    DJANGO_URL_HOST_NOT_ALLOWED = "djftpd.W006"
    DJANGO_URL_REDIRECTED = "djftpd.W007"


@register(Tags.security)
def check_secret(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        secret = secret_bytes()
    except ImproperlyConfigured:
        return [Error(Messages.SECRET_MISSING, hint=Hints.SECRET_MISSING, id=Codes.SECRET_MISSING)]
    if len(secret) < MIN_SECRET_BYTES:
        return [
            Error(Messages.SECRET_TOO_SHORT, hint=Hints.SECRET_TOO_SHORT, id=Codes.SECRET_TOO_SHORT)
        ]
    return []


def _perms_problem(value: Any, *, allow_callable: bool) -> str | None:
    if allow_callable and callable(value):
        return None
    try:
        canonical_perms(value)
    except ValueError as exc:
        return str(exc)
    return None


@register(Tags.security)
def check_perms(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    candidates = [('DJFTPD["PERMS"]', app_settings.PERMS, True)]
    candidates += [(name, legacy_setting(name), False) for name in ("read_perms", "write_perms")]
    errors: list[CheckMessage] = []
    for setting, value, allow_callable in candidates:
        if value is None or value is MISSING:
            continue
        problem = _perms_problem(value, allow_callable=allow_callable)
        if problem:
            errors.append(
                Error(
                    Messages.PERMS_INVALID.format(setting=setting, problem=problem),
                    hint=Hints.PERMS_INVALID,
                    id=Codes.PERMS_INVALID,
                )
            )
    return errors


@register()
def check_compact_activity_log(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E006: a value that is not a bool (a string "False" is truthy, and would compact)."""
    value = app_settings.COMPACT_ACTIVITY_LOG
    if isinstance(value, bool):
        return []
    return [
        Error(
            Messages.COMPACT_NOT_BOOL.format(value=value),
            hint=Hints.COMPACT_NOT_BOOL,
            id=Codes.COMPACT_NOT_BOOL,
        )
    ]


@register(Tags.urls)
def check_urls(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        reverse("djftpd:auth")
    except NoReverseMatch:
        return [
            Error(Messages.URLS_NOT_MOUNTED, hint=Hints.URLS_NOT_MOUNTED, id=Codes.URLS_NOT_MOUNTED)
        ]
    return []


@register(Tags.compatibility)
def check_legacy_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    warnings: list[CheckMessage] = []
    for name in legacy_settings_in_use():
        new = LEGACY[name]
        hint = Hints.LEGACY_SETTING.format(new=new) if new else Hints.LEGACY_FTP_HANDLER
        warnings.append(
            CheckWarning(
                Messages.LEGACY_SETTING.format(name=name), hint=hint, id=Codes.LEGACY_SETTING
            )
        )
    return warnings


@register(Tags.security)
def check_home_root(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if app_settings.HOME_ROOT:
        return []
    if not has_home_source():
        # Setting HOME_ROOT, as the hint says, also settles W002: one message.
        return [Error(Messages.NO_HOME_SOURCE, hint=Hints.NO_HOME_SOURCE, id=Codes.NO_HOME_SOURCE)]
    return [
        CheckWarning(Messages.HOME_ROOT_UNSET, hint=Hints.HOME_ROOT_UNSET, id=Codes.HOME_ROOT_UNSET)
    ]


@register(Tags.security)
def check_sidecar_urls(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if app_settings.is_set("SIDECAR_URLS"):
        if app_settings.SIDECAR_URLS:
            return []
        return [
            CheckWarning(
                Messages.NO_SIDECAR_URLS, hint=Hints.NO_SIDECAR_URLS, id=Codes.NO_SIDECAR_URLS
            )
        ]
    if local_sidecar_url():
        return []
    return [
        CheckWarning(
            Messages.NO_LOCAL_SIDECAR.format(listen=ops_listen()),
            hint=Hints.NO_LOCAL_SIDECAR,
            id=Codes.NO_LOCAL_SIDECAR,
        )
    ]


def _effective_tls_mode() -> str:
    """DJFTPD_TLS_MODE as startftpserver passes it: DJFTPD["ENV"] beats DJFTPD["TLS_MODE"]."""
    env = app_settings.ENV or {}
    return str(env.get("DJFTPD_TLS_MODE") or app_settings.TLS_MODE or "off")


def _is_loopback(listen: str) -> bool:
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@register(Tags.security, deploy=True)
def check_tls_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``check --deploy``: FTPS off (W011); plain FTP reachable beyond loopback (W010)."""
    mode = _effective_tls_mode()
    if mode in ("required", "implicit"):
        return []
    messages: list[CheckMessage] = []
    if mode == "off":
        messages.append(CheckWarning(Messages.TLS_OFF, hint=Hints.TLS_OFF, id=Codes.TLS_OFF))
    listen = (app_settings.ENV or {}).get("DJFTPD_LISTEN") or resolve_listen()
    if not _is_loopback(str(listen)):
        messages.append(
            CheckWarning(
                Messages.PLAIN_FTP_EXPOSED.format(listen=listen, mode=mode),
                hint=Hints.PLAIN_FTP_EXPOSED,
                id=Codes.PLAIN_FTP_EXPOSED,
            )
        )
    return messages


@register(Tags.security, deploy=True)
def check_ftp_permission_required(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``check --deploy``: without REQUIRE_PERMISSION, a password alone opens FTP (W013)."""
    if app_settings.REQUIRE_PERMISSION:
        return []
    return [
        CheckWarning(
            Messages.NO_FTP_PERMISSION_REQUIRED,
            hint=Hints.NO_FTP_PERMISSION_REQUIRED,
            id=Codes.NO_FTP_PERMISSION_REQUIRED,
        )
    ]


@register(Tags.compatibility)
def check_unknown_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        keys = list(app_settings.user_settings)
    except ImproperlyConfigured:
        return []  # DJFTPD is not a dict: reported when it is read
    warnings: list[CheckMessage] = []
    for key in sorted((key for key in keys if key not in DEFAULTS), key=str):
        near = difflib.get_close_matches(str(key).upper(), list(DEFAULTS), n=1)
        hint = Hints.UNKNOWN_KEY_NEAR.format(near=near[0]) if near else Hints.UNKNOWN_KEY
        warnings.append(
            CheckWarning(Messages.UNKNOWN_KEY.format(key=key), hint=hint, id=Codes.UNKNOWN_KEY)
        )
    return warnings


@register(Tags.compatibility)
def check_legacy_handler_attributes(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """pyftpdlib handler attributes the sidecar ignores, each named once (W012)."""
    from djftpd.legacy import IGNORED_ATTRIBUTES, ignored_attributes, legacy_handler

    try:
        handler = legacy_handler()
    except ImproperlyConfigured:
        return []  # reported when the handler is used
    return [
        CheckWarning(
            Messages.LEGACY_HANDLER_ATTRIBUTE.format(name=name),
            hint=Hints.LEGACY_HANDLER_ATTRIBUTE.format(replacement=IGNORED_ATTRIBUTES[name]),
            id=Codes.LEGACY_HANDLER_ATTRIBUTE,
        )
        for name in ignored_attributes(handler)
    ]


def _django_url_parts() -> tuple[str, str, str] | None:
    """(scheme, host as ALLOWED_HOSTS sees it, path) of DJFTPD["DJANGO_URL"]; None if unusable."""
    try:
        parts = urlsplit(str(app_settings.DJANGO_URL))
        hostname = parts.hostname
    except ValueError:
        return None
    if not hostname:
        return None
    host = f"[{hostname}]" if ":" in hostname else hostname
    return parts.scheme, host, parts.path or "/"


def django_url_problems() -> list[CheckMessage]:
    """What stops the sidecar's requests from reaching the djftpd views: a host Django would
    refuse (400) or an HTTPS redirect (301). Shared by the check and ``djftpd_check``."""
    parts = _django_url_parts()
    if parts is None:
        return []
    scheme, host, path = parts
    url = str(app_settings.DJANGO_URL)
    problems: list[CheckMessage] = []
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # Django's own DEBUG default
    if not validate_host(host, allowed):
        problems.append(
            CheckWarning(
                Messages.DJANGO_URL_HOST_NOT_ALLOWED.format(url=url, host=host),
                hint=Hints.DJANGO_URL_HOST_NOT_ALLOWED.format(host=host),
                id=Codes.DJANGO_URL_HOST_NOT_ALLOWED,
            )
        )
    redirecting = (
        scheme == "http"
        and getattr(settings, "SECURE_SSL_REDIRECT", False)
        and "django.middleware.security.SecurityMiddleware" in getattr(settings, "MIDDLEWARE", [])
    )
    exempt = [re.compile(r) for r in getattr(settings, "SECURE_REDIRECT_EXEMPT", [])]
    endpoints = [(path.rstrip("/") + "/" + name).lstrip("/") for name in ("auth/", "events/")]
    if redirecting and any(not any(p.search(e) for p in exempt) for e in endpoints):
        problems.append(
            CheckWarning(
                Messages.DJANGO_URL_REDIRECTED.format(url=url),
                hint=Hints.DJANGO_URL_REDIRECTED.format(path=path.lstrip("/")),
                id=Codes.DJANGO_URL_REDIRECTED,
            )
        )
    return problems


@register(Tags.security)
def check_django_url(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The sidecar's requests must reach the views: W006 (host), W007 (HTTPS redirect)."""
    return django_url_problems()
