"""Who may log in, and with what: the login policy of DESIGN.md section 5, read from the
settings of :mod:`djftpd.conf` and the user's ``FTPAccount``::

    from djftpd.policy import resolve_home, resolve_perms, resolve_welcome
    resolve_home(user)     # "/srv/ftp/alice"
    resolve_perms(user)    # "elr"

Precedence for each per-user value: the user's ``FTPAccount`` -> the ``DJFTPD`` value (a
callable or a template) -> the djftpd 0.3 setting -> the default.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist

from djftpd.conf import (
    DEFAULT_WELCOME,
    LEGACY_READ_PERMS,
    LEGACY_WRITE_PERMS,
    MISSING,
    PERM_LETTERS,
    app_settings,
    legacy_setting,
)

logger = logging.getLogger("djftpd")


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
