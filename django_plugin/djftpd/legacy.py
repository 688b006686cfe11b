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
connect                        ``on_connect()``
disconnect                     ``on_disconnect()``
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

pyftpdlib's class attributes that configured the server (``passive_ports``,
``masquerade_address``, ``banner``, ``timeout``, ...) do nothing here: the sidecar has its own
settings for them. :func:`ignored_attributes` names those a handler sets, and system check
``djftpd.W012`` reports each once, with the setting that replaces it.

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

from djftpd.conf import MISSING, legacy_setting
from djftpd.policy import NoSafeHome, resolve_home
from djftpd.signals import (
    EVENT_SIGNALS,
    ftp_connect,
    ftp_disconnect,
    ftp_file_received,
    ftp_file_sent,
    ftp_incomplete_file_received,
    ftp_incomplete_file_sent,
    ftp_login,
    ftp_login_failed,
    ftp_logout,
)

logger = logging.getLogger("djftpd")

#: Signal -> (pyftpdlib hook name, what it gets: "username", "path" or "nothing").
HOOKS: dict[Signal, tuple[str, str]] = {
    ftp_connect: ("on_connect", "nothing"),
    ftp_disconnect: ("on_disconnect", "nothing"),
    ftp_login: ("on_login", "username"),
    ftp_login_failed: ("on_login_failed", "username"),
    ftp_logout: ("on_logout", "username"),
    ftp_file_sent: ("on_file_sent", "path"),
    ftp_file_received: ("on_file_received", "path"),
    ftp_incomplete_file_sent: ("on_incomplete_file_sent", "path"),
    ftp_incomplete_file_received: ("on_incomplete_file_received", "path"),
}

DISPATCH_UID = "djftpd.legacy.ftp_handler"

#: pyftpdlib FTPHandler attributes that configured its server, and what replaces each.
IGNORED_ATTRIBUTES: dict[str, str] = {
    "passive_ports": 'DJFTPD["PASSIVE_PORTS"] (a "first-last" range)',
    "masquerade_address": 'DJFTPD["PUBLIC_HOST"]',
    "masquerade_address_map": 'DJFTPD["PUBLIC_HOST"]',
    "banner": "nothing: the 220 greeting is fixed; the login text is FTP_WELCOME_MSG",
    "timeout": 'DJFTPD["ENV"]["DJFTPD_IDLE_TIMEOUT"] (e.g. "300s")',
    "max_login_attempts": 'DJFTPD["ENV"]["DJFTPD_MAX_LOGIN_ATTEMPTS"]',
    "auth_failed_timeout": 'DJFTPD["ENV"]["DJFTPD_FAILED_LOGIN_DELAY"] (e.g. "3s")',
    "permit_foreign_addresses": "nothing: data connections to other hosts are always refused",
    "permit_privileged_ports": "nothing: PORT to a port below 1024 is always refused",
    "use_sendfile": "nothing: the sidecar always uses sendfile/splice for plain transfers",
    "certfile": 'DJFTPD["TLS_CERT"]',
    "keyfile": 'DJFTPD["TLS_KEY"]',
    "tls_control_required": 'DJFTPD["TLS_MODE"] = "required"',
    "tls_data_required": 'DJFTPD["TLS_MODE"] = "required"',
    "authorizer": "nothing: logins go through django.contrib.auth.authenticate()",
    "abstracted_fs": "nothing: each user is confined to their home by the sidecar",
    "dtp_handler": "nothing: the sidecar owns the data connections",
}


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


def ignored_attributes(handler: Any) -> list[str]:
    """The IGNORED_ATTRIBUTES that ``handler`` (a class or an instance) sets itself, outside
    pyftpdlib's own classes (whose defaults nobody chose), in IGNORED_ATTRIBUTES order."""
    if handler is None:
        return []
    cls = handler if isinstance(handler, type) else type(handler)
    own: set[str] = set() if isinstance(handler, type) else set(getattr(handler, "__dict__", {}))
    for klass in cls.__mro__:
        if klass is not object and not klass.__module__.startswith("pyftpdlib"):
            own.update(vars(klass))
    return [name for name in IGNORED_ATTRIBUTES if name in own]


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
    if takes == "nothing":
        getattr(_target(handler, username, client_ip), name)()
        return
    if takes == "path":
        if path is None:
            return
        argument = filesystem_path(user, path)
    else:
        argument = username
    _call(getattr(_target(handler, username, client_ip), name), argument)


def bridge_only(signal: Signal) -> bool:
    """Whether :func:`call_legacy_handler` is the only receiver connected to ``signal``."""
    # Each entry of Signal.receivers starts with its lookup key, (dispatch_uid, sender id).
    return all(entry[0][0] == DISPATCH_UID for entry in signal.receivers)


def has_hook(signal: Signal) -> bool:
    """Whether :func:`call_legacy_handler` would call a hook for ``signal`` now (the setting
    is read live). A handler that cannot be imported counts as one: the receiver reports it."""
    if signal not in HOOKS:
        return False
    try:
        handler = legacy_handler()
    except ImproperlyConfigured:
        return True
    return handler is not None and callable(getattr(handler, HOOKS[signal][0], None))


def connect() -> None:
    """Connect :func:`call_legacy_handler` to every djftpd signal (idempotent)."""
    for signal in EVENT_SIGNALS.values():
        signal.connect(call_legacy_handler, dispatch_uid=DISPATCH_UID)
