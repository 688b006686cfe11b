"""Endpoints the djftpd sidecar calls (DESIGN.md section 2), mounted by ``djftpd.urls``::

# urls.py of your project
urlpatterns = [path("ftp/", include("djftpd.urls"))]

# the sidecar then calls, signed:
# POST /ftp/auth/ {"username", "password", "client_ip", "protocol", "session"}
#   (or, for an SFTP key login, "public_key": "<authorized_keys line>" instead of "password")
#   200 {"ok": true, "username", "home", "perms", "welcome", ...}
#   401 {"ok": false, "error": "invalid_credentials"}
# POST /ftp/events/ {"events": [{"id", "type", "time", "session", "username", ...}, ...]}
#   200 {"accepted": n, "rejected": [{"id": "<event id>", "error": "<short reason>"}, ...]}
#   503 {"ok": false, "error": "database_unavailable"}
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from djftpd.compat import login_not_required
from djftpd.conf import app_settings, resolve_ttl
from djftpd.events import apply_batch, event_batch
from djftpd.policy import (
    NoSafeHome,
    account_disabled,
    resolve_home,
    resolve_limits,
    resolve_perms,
    resolve_welcome,
)
from djftpd.signing import Optional, error_response, ip_address, one_of, signed_json_view, string
from djftpd.sshkeys import mark_key_used, user_for_key

logger = logging.getLogger("djftpd")

AUTH_FIELDS = {
    "username": string,
    "password": Optional(string),
    "public_key": Optional(string),
    "client_ip": ip_address,
    "protocol": one_of("ftp", "ftps", "sftp"),
    "session": string,
}

EVENTS_FIELDS = {"events": event_batch}

#: Request headers that carry a client address (django-ipware's list and its relatives).
#: The auth request comes from the sidecar, so whatever they say is not the FTP client.
FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
    "HTTP_FORWARDED_FOR",
    "HTTP_X_FORWARDED",
    "HTTP_X_CLUSTER_CLIENT_IP",
    "HTTP_CLIENT_IP",
    "HTTP_X_CLIENT_IP",
    "HTTP_TRUE_CLIENT_IP",
    "HTTP_CF_CONNECTING_IP",
    "HTTP_FASTLY_CLIENT_IP",
    "HTTP_X_ORIGINAL_FORWARDED_FOR",
    "HTTP_X_ENVOY_EXTERNAL_ADDRESS",
    "HTTP_VIA",
    "X_FORWARDED_FOR",
)


def invalid_credentials() -> JsonResponse:
    """The one refusal, whatever the reason, so nothing about the account leaks."""
    return JsonResponse({"ok": False, "error": "invalid_credentials"}, status=401)


def use_client_ip(request: HttpRequest, client_ip: str) -> None:
    """Make ``client_ip`` the request's client address for authentication backends.

    django-axes and django-ipware read forwarded headers before ``REMOTE_ADDR``; they are
    removed so the signed, trusted ``client_ip`` is all they can see. ``request.axes_*``
    attributes that a middleware computed from the request as it arrived (django-axes < 6 did)
    are dropped too: axes computes them again, from ``client_ip``, when it needs them.
    """
    for header in FORWARDED_HEADERS:
        request.META.pop(header, None)
    request.META["REMOTE_ADDR"] = client_ip
    for name in [name for name in vars(request) if name.startswith("axes_")]:
        delattr(request, name)


def authenticate_ftp_login(request: HttpRequest, username: str, password: str) -> Any:
    """``authenticate()``, with a lockout (django-axes and the like) as a plain refusal.

    A backend's ``PermissionDenied`` ends ``authenticate()`` with None; one raised elsewhere
    (a ``user_login_failed`` receiver) is caught here. django-axes also flags the request
    ``axes_locked_out`` so that its middleware replaces the answer with its own 429 (403
    before axes 6): the flag is cleared, so the sidecar gets the usual signed 401 and axes'
    page never reaches it (a 403 means a bad signature to the sidecar).
    """
    try:
        user = authenticate(request, username=username, password=password)
    except PermissionDenied:
        logger.info("djftpd: login of username %r refused by PermissionDenied", username)
        user = None
    if getattr(request, "axes_locked_out", False):
        logger.info("djftpd: username %r is locked out by django-axes", username)
        request.axes_locked_out = False  # type: ignore[attr-defined]
        user = None
    return user


def may_use_ftp(user: Any) -> bool:
    """Whether an authenticated ``user`` may log in: active, no disabled FTPAccount, and
    REQUIRE_PERMISSION if set."""
    if user is None or not user.is_active or account_disabled(user):
        return False
    permission = app_settings.REQUIRE_PERMISSION
    return not permission or user.has_perm(permission)


# Machine endpoints: the sidecar has no session, its requests are signed instead.
@login_not_required
@csrf_exempt
@signed_json_view(fields=AUTH_FIELDS, purpose="auth")
def auth(request: HttpRequest, payload: dict[str, Any]) -> HttpResponse:
    """Check an FTP login with ``authenticate()`` and answer the user's home and perms."""
    if "password" in payload and "public_key" in payload:
        return error_response(400, "bad_request", "'password' or 'public_key', not both")
    if "password" not in payload and "public_key" not in payload:
        return error_response(400, "bad_request", "missing field 'password'")
    use_client_ip(request, payload["client_ip"])
    username = payload["username"]
    secret = payload.get("password", payload.get("public_key", ""))
    if "\x00" in username or "\x00" in secret:
        # No account can have it, and some databases reject NUL in a query.
        return invalid_credentials()
    if "public_key" in payload:
        user = user_for_key(username, secret)
    else:
        user = authenticate_ftp_login(request, username, secret)
    if not may_use_ftp(user):
        return invalid_credentials()
    try:
        home = resolve_home(user)
    except NoSafeHome:
        logger.error("djftpd: no safe home directory for username %r; login refused", username)
        return invalid_credentials()
    quota_bytes, max_sessions = resolve_limits(user)
    grant: dict[str, Any] = {
        "ok": True,
        "username": user.get_username(),
        "home": home,
        "perms": resolve_perms(user),
        "welcome": resolve_welcome(user),
        "quota_bytes": quota_bytes,
        "max_sessions": max_sessions,
    }
    ttl = resolve_ttl()
    if ttl is not None:
        grant["ttl"] = ttl
    if "public_key" in payload:
        mark_key_used(user, secret)
    return JsonResponse(grant)


@login_not_required
@csrf_exempt
@signed_json_view(fields=EVENTS_FIELDS, purpose="events")
def events(request: HttpRequest, payload: dict[str, Any]) -> HttpResponse:
    """Apply a batch of FTP events: record each new one, then send its signal.

    Each event stands alone: an invalid one, or one the database refuses, is listed in
    "rejected" (the sidecar does not send it again) and the others are stored; a well-signed
    batch is never a 500. Events seen before count as accepted but fire nothing, so the
    sidecar may deliver again safely. A database that cannot be used at all answers 503 and
    rejects nothing: the sidecar keeps the batch and retries.
    """
    batch = payload["events"]
    try:
        result = apply_batch(batch)
    except (OperationalError, InterfaceError) as exc:
        logger.error("djftpd: database unavailable, %d events to be retried: %s", len(batch), exc)
        return JsonResponse({"ok": False, "error": "database_unavailable"}, status=503)
    logger.debug(
        "djftpd: %d events received, %d new, %d rejected",
        len(batch),
        result.new,
        len(result.rejected),
    )
    return JsonResponse({"accepted": result.accepted, "rejected": result.rejected})
