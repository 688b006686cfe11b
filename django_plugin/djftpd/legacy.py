"""The djftpd 0.3 ``ftp_handler`` bridge: pyftpdlib-style hooks called from djftpd's signals.

djftpd 0.3 ran pyftpdlib inside Django and let a project replace its handler class::

    # settings.py (djftpd 0.3, still honoured; check djftpd.W001 suggests the signals)
    class MyHandler(FTPHandler):
        def on_file_received(self, file):
            process_upload(self.username, file)

    ftp_handler = MyHandler        # or FTP_HANDLER = ..., an instance, or a dotted path

The one receiver here is connected to every signal of :mod:`djftpd.signals` and calls, when
the handler has it, the hook matching the event:

=============================  ===========================================
event                          hook
=============================  ===========================================
login                          ``on_login(username)``
login_failed                   ``on_login_failed(username)``; a hook that takes
                               ``(username, password)`` (pyftpdlib 1.x) gets ``None``
                               as the password: djftpd never knows it
logout                         ``on_logout(username)``
file_sent, file_received,      ``on_file_sent(path)``, ``on_file_received(path)``,
incomplete_file_sent,          ``on_incomplete_file_sent(path)``,
incomplete_file_received       ``on_incomplete_file_received(path)``
=============================  ===========================================

pyftpdlib passed the file's absolute filesystem path, so ``path`` is the user's home (resolved
as for the login: ``DJFTPD["HOME_DIR"]``, ``get_ftp_home_dir``, ``HOME_ROOT``) joined with the
path the FTP user saw; when no home can be resolved (the user was deleted meanwhile), the FTP
path itself (``/reports/q1.txt``) is passed.

A handler *class* is not instantiated (pyftpdlib's ``__init__`` needs a live connection): each
hook runs on a bare instance (``cls.__new__(cls)``) whose ``username`` and ``remote_ip``
attributes are set, which is what pyftpdlib hooks usually read. An *instance* is used as is.
"""

from __future__ import annotations

import inspect
import logging
import os
import posixpath
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal
from django.utils.module_loading import import_string

from djftpd.conf import MISSING, NoSafeHome, legacy_setting, resolve_home
from djftpd.signals import (
    EVENT_SIGNALS,
    ftp_file_received,
    ftp_file_sent,
    ftp_incomplete_file_received,
    ftp_incomplete_file_sent,
    ftp_login,
    ftp_login_failed,
    ftp_logout,
)

logger = logging.getLogger("djftpd")

#: Signal -> (pyftpdlib hook name, what it gets: "username" or "path").
HOOKS: dict[Signal, tuple[str, str]] = {
    ftp_login: ("on_login", "username"),
    ftp_login_failed: ("on_login_failed", "username"),
    ftp_logout: ("on_logout", "username"),
    ftp_file_sent: ("on_file_sent", "path"),
    ftp_file_received: ("on_file_received", "path"),
    ftp_incomplete_file_sent: ("on_incomplete_file_sent", "path"),
    ftp_incomplete_file_received: ("on_incomplete_file_received", "path"),
}

DISPATCH_UID = "djftpd.legacy.ftp_handler"


def legacy_handler() -> Any:
    """The ``ftp_handler`` (or ``FTP_HANDLER``) setting, a dotted path imported; or None."""
    handler = legacy_setting("ftp_handler")
    if handler is MISSING or handler is None:
        return None
    if isinstance(handler, str):
        try:
            return import_string(handler)
        except ImportError as exc:
            raise ImproperlyConfigured(f"ftp_handler {handler!r} cannot be imported.") from exc
    return handler


def filesystem_path(user: Any, virtual: str) -> str:
    """The absolute path pyftpdlib would have passed: ``user``'s home joined with the path the
    FTP user saw; the FTP path itself when there is no user or no home."""
    if user is None:
        return virtual
    try:
        home = resolve_home(user)
    except (NoSafeHome, ImproperlyConfigured):
        return virtual
    relative = posixpath.normpath("/" + virtual).lstrip("/")
    return os.path.normpath(os.path.join(home, *relative.split("/"))) if relative else home


def _target(handler: Any, username: str | None, client_ip: str) -> Any:
    if not isinstance(handler, type):
        return handler
    instance = handler.__new__(handler)
    vars(instance).update(username=username, remote_ip=client_ip)
    return instance


def _call(hook: Any, argument: Any) -> None:
    """Call ``hook(argument)``, or ``hook(argument, None)`` for a pyftpdlib 1.x
    ``on_login_failed(username, password)``: the password is never known here."""
    try:
        inspect.signature(hook).bind(argument)
    except TypeError:
        try:
            inspect.signature(hook).bind(argument, None)
        except TypeError:
            pass
        else:
            hook(argument, None)
            return
    except ValueError:  # no signature available (a builtin): just try
        pass
    hook(argument)


def call_legacy_handler(
    sender: Any,
    *,
    signal: Signal,
    username: str | None = None,
    user: Any = None,
    path: str | None = None,
    client_ip: str = "",
    **kwargs: Any,
) -> None:
    """Receiver of every djftpd signal: call the ``ftp_handler`` hook for it, if any."""
    if signal not in HOOKS:
        return
    handler = legacy_handler()
    if handler is None:
        return
    name, takes = HOOKS[signal]
    if not callable(getattr(handler, name, None)):
        return
    if takes == "path":
        if path is None:
            return
        argument = filesystem_path(user, path)
    else:
        argument = username
    _call(getattr(_target(handler, username, client_ip), name), argument)


def connect() -> None:
    """Connect :func:`call_legacy_handler` to every djftpd signal (idempotent)."""
    for signal in EVENT_SIGNALS.values():
        signal.connect(call_legacy_handler, dispatch_uid=DISPATCH_UID)
