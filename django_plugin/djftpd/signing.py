"""Signed JSON between the djftpd sidecar and Django (signature v2, DESIGN.md section 10).

Every request carries two headers over its raw body, and names what it is for (its
*purpose*: ``auth``, ``events``, ``cache-purge``, ``ping``, ``sessions``, ``sessions-close``)::

    X-Djftpd-Timestamp: <unix seconds>
    X-Djftpd-Signature: v2=<hex HMAC-SHA256(secret, "djftpd-v2|<purpose>|<timestamp>|<raw body>")>

An answer to a request that verified is signed over
``"djftpd-v2|<purpose>-answer|<timestamp>|<the request's signature hex>|<raw body>"``, which
ties it to the one request it answers (a recorded 200 for alice cannot be replayed to another
login) and keeps every kind apart: a purge cannot pass for a ping, an answer for a request,
an auth answer for an events answer. Answers to requests that did not verify are not signed.

Sign a body, as the sidecar does (and the tests)::

    from djftpd.signing import sign
    headers = sign(b'{"username": "alice"}', secret, purpose="auth")

Protect a view with the one decorator that answers every protocol error itself (405, 413,
403 ``bad_signature``/``stale_timestamp``, 400 ``bad_request``) and signs the answers to
requests that verified::

    @csrf_exempt
    @signed_json_view(fields={"username": string, "client_ip": ip_address}, purpose="auth")
    def auth(request: HttpRequest, payload: dict[str, Any]) -> HttpResponse:
        ...
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

from djftpd.conf import secret_bytes

logger = logging.getLogger("djftpd")

TIMESTAMP_HEADER = "X-Djftpd-Timestamp"
SIGNATURE_HEADER = "X-Djftpd-Signature"
SIGNATURE_VERSION = "v2"
#: What a signature may be for; it is signed, so one kind never verifies as another.
PURPOSES = ("auth", "events", "cache-purge", "ping", "sessions", "sessions-close")
_DOMAIN = b"djftpd-v2"
_ANSWER_SUFFIX = "-answer"
#: Largest accepted distance, in seconds, between the request's timestamp and our clock.
MAX_SKEW = 300
#: Largest accepted request body, in bytes; larger bodies get 413.
MAX_BODY = 64 * 1024

_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_REQUEST_SIGNATURE_RE = re.compile(r"v2=([0-9a-f]{64})")

Validator = Callable[[Any], Any]
View = Callable[..., HttpResponse]


class SignatureError(Exception):
    """The request is not signed with our secret (403 ``bad_signature``)."""

    code = "bad_signature"


class StaleTimestamp(SignatureError):
    """The signature is right but its timestamp is too far from our clock (403)."""

    code = "stale_timestamp"


class BadRequest(Exception):
    """The signed body is not what the endpoint takes (400 ``bad_request``); args[0] is the
    detail sent back, a fixed text that never echoes the input."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _check_purpose(purpose: str) -> None:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown signature purpose {purpose!r}")


def signature(
    body: bytes,
    secret: str | bytes,
    timestamp: str,
    purpose: str,
    request_signature: str | None = None,
) -> str:
    """The ``X-Djftpd-Signature`` value of ``body`` sent at ``timestamp`` for ``purpose``; for
    an answer, of the answer to the request that carried ``request_signature`` (``v2=``
    included). :class:`SignatureError` when ``request_signature`` is not a v2 signature."""
    _check_purpose(purpose)
    fields = [_DOMAIN, purpose.encode("ascii"), timestamp.encode("ascii")]
    if request_signature is not None:
        match = _REQUEST_SIGNATURE_RE.fullmatch(request_signature)
        if match is None:
            raise SignatureError("malformed request signature")
        fields[1] += _ANSWER_SUFFIX.encode("ascii")
        fields.append(match.group(1).encode("ascii"))
    mac = hmac.new(_key(secret), b"|".join([*fields, body]), hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def sign(
    body: bytes,
    secret: str | bytes,
    timestamp: int | str | None = None,
    *,
    purpose: str,
    request_signature: str | None = None,
) -> dict[str, str]:
    """Headers that sign ``body`` for ``purpose``; ``timestamp`` defaults to now, in unix
    seconds. Pass ``request_signature`` to sign an answer to that (verified) request."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: signature(body, secret, ts, purpose, request_signature),
    }


def verify(
    body: bytes,
    timestamp: str | None,
    sig: str | None,
    secret: str | bytes,
    *,
    purpose: str,
    now: float | None = None,
    request_signature: str | None = None,
) -> None:
    """Raise :class:`SignatureError` or :class:`StaleTimestamp` unless the headers sign ``body``
    for ``purpose`` (as the answer to ``request_signature``, when given).

    The signature is compared in constant time, before the timestamp's age is looked at, so
    ``stale_timestamp`` is only ever reported for a request made with the right secret.
    """
    if not timestamp or not sig:
        raise SignatureError("missing signature headers")
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise SignatureError("malformed timestamp")
    expected = signature(body, secret, timestamp, purpose, request_signature).encode("ascii")
    if not hmac.compare_digest(expected, sig.encode("utf-8", "surrogatepass")):
        raise SignatureError("signature mismatch")
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_SKEW:
        raise StaleTimestamp("timestamp too far from the server clock")


# Field validators for signed_json_view: return the clean value or raise ValueError.


def string(value: Any) -> str:
    """A JSON string that is valid Unicode (no lone surrogates from ``\\ud800`` escapes)."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def ip_address(value: Any) -> str:
    """An IPv4 or IPv6 address, normalised; IPv4-mapped IPv6 becomes plain IPv4."""
    try:
        ip = ipaddress.ip_address(string(value))
    except ValueError:
        raise ValueError("must be an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip)


def one_of(*choices: str) -> Validator:
    """A string among ``choices``."""

    def validate(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}")
        return value

    return validate


class Optional:
    """A field that may be absent: it is then missing from the payload too."""

    def __init__(self, validate: Validator) -> None:
        self.validate = validate

    def __call__(self, value: Any) -> Any:
        return self.validate(value)


def error_response(status: int, error: str, detail: str | None = None) -> JsonResponse:
    """``{"ok": false, "error": error[, "detail": detail]}`` with ``status``."""
    data: dict[str, Any] = {"ok": False, "error": error}
    if detail is not None:
        data["detail"] = detail
    return JsonResponse(data, status=status)


def _read_body(request: HttpRequest) -> bytes | None:
    """The raw body, or None when it is larger than MAX_BODY (read no further than needed)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY:
        return None
    try:
        body = request.body
    except RequestDataTooBig:
        return None
    return body if len(body) <= MAX_BODY else None


def parse_payload(body: bytes, fields: Mapping[str, Validator]) -> dict[str, Any]:
    """The validated ``fields`` of a JSON object body; :class:`BadRequest` otherwise.

    Fields not named in ``fields`` are ignored, so the sidecar may send newer ones.
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    payload = {}
    for name, validate in fields.items():
        if name not in data:
            if isinstance(validate, Optional):
                continue
            raise BadRequest(f"missing field {name!r}")
        try:
            payload[name] = validate(data[name])
        except ValueError as exc:
            raise BadRequest(f"field {name!r} {exc}") from None
    return payload


def signed_json_view(
    *, fields: Mapping[str, Validator], purpose: str, methods: tuple[str, ...] = ("POST",)
) -> Callable[[View], View]:
    """Decorate ``view(request, payload)``: check method, size, signature (for ``purpose``)
    and fields.

    The answer to a request that verified, the view's own or a 400 made here, is signed as
    ``purpose``'s answer, so the sidecar can refuse forged ones. The answer to one that did not
    (405, 413, 403) is not: signing it would hand a signature to whoever sent it.
    """
    _check_purpose(purpose)

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            secret = secret_bytes()
            response, verified = _checked_call(
                view, request, secret, purpose, fields, methods, *args, **kwargs
            )
            if verified:
                request_signature = request.headers.get(SIGNATURE_HEADER, "")
                for header, value in sign(
                    response.content, secret, purpose=purpose, request_signature=request_signature
                ).items():
                    response[header] = value
            return response

        return wrapper

    return decorator


def _checked_call(
    view: View,
    request: HttpRequest,
    secret: bytes,
    purpose: str,
    fields: Mapping[str, Validator],
    methods: tuple[str, ...],
    *args: Any,
    **kwargs: Any,
) -> tuple[HttpResponse, bool]:
    """The answer, and whether the request's signature verified."""
    if request.method not in methods:
        response = error_response(405, "method_not_allowed")
        response["Allow"] = ", ".join(methods)
        return response, False
    body = _read_body(request)
    if body is None:
        return error_response(413, "request_too_large", f"body over {MAX_BODY} bytes"), False
    try:
        verify(
            body,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            secret,
            purpose=purpose,
        )
    except SignatureError as exc:
        logger.warning(
            "djftpd: refused %s from %s: %s (is DJFTPD_SECRET the same on both sides, "
            "and are the clocks in sync?)",
            request.path,
            request.META.get("REMOTE_ADDR"),
            exc,
        )
        return error_response(403, exc.code), False
    try:
        payload = parse_payload(body, fields)
    except BadRequest as exc:
        return error_response(400, "bad_request", str(exc)), True
    return view(request, payload, *args, **kwargs), True
