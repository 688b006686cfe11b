"""Calls to the sidecars' ops listeners besides the cache purge (see :mod:`djftpd.receivers`):
``ping``, which tells whether a sidecar is reachable and shares our secret::

    from djftpd.ops import ping
    result = ping("http://127.0.0.1:9121/")
    result.ok, result.status, result.detail   # True, "ok", "the sidecar shares DJFTPD's secret"

The sidecar answers a ``POST <url>ping`` signed for ``ping`` with ``200 {"ok":true}``, signed
as the ``ping-answer`` to our request, or an unsigned ``403`` when our signature is wrong.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from djftpd.conf import app_settings, secret_bytes
from djftpd.receivers import _opener
from djftpd.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    StaleTimestamp,
    sign,
    verify,
)
from djftpd.storage import normalise_location

#: Seconds to wait for a sidecar's answer.
PING_TIMEOUT = 5.0
#: Most bytes of an answer read.
MAX_ANSWER = 64 * 1024


@dataclass(frozen=True)
class PingResult:
    """``status`` is one of ``ok``, ``secret_mismatch``, ``clock_skew``, ``bad_answer``,
    ``storage_mismatch``, ``http_error`` and ``unreachable``; ``detail`` says more, for people."""

    url: str
    status: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def ping_url(base: str) -> str:
    """The ping endpoint under a sidecar's ops base URL."""
    return base.rstrip("/") + "/ping"


def _error_code(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def ping(base: str, *, secret: bytes | None = None, timeout: float = PING_TIMEOUT) -> PingResult:
    """POST a signed ``{}`` to ``<base>ping`` and check the signed answer; never raises for
    network or HTTP trouble (``ImproperlyConfigured`` when no secret is set)."""
    secret = secret_bytes() if secret is None else secret
    url = ping_url(base)
    body = b"{}"
    headers = sign(body, secret, purpose="ping")
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            answer = response.read(MAX_ANSWER)
            answer_headers = response.headers
    except urllib.error.HTTPError as exc:
        code = _error_code(exc.read(MAX_ANSWER))
        if exc.code == 403 and code == "stale_timestamp":
            return PingResult(
                url, "clock_skew", "the sidecar says our clock is off by over 5 minutes (403)"
            )
        if exc.code == 403:
            return PingResult(
                url,
                "secret_mismatch",
                "the sidecar refused our signature (403): "
                'its DJFTPD_SECRET is not DJFTPD["SECRET"]',
            )
        hint = " (not a djftpd ops listener, or a sidecar without /ping)" if exc.code == 404 else ""
        return PingResult(url, "http_error", f"HTTP {exc.code}{hint}")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return PingResult(url, "unreachable", str(reason) or type(reason).__name__)
    try:
        verify(
            answer,
            answer_headers.get(TIMESTAMP_HEADER),
            answer_headers.get(SIGNATURE_HEADER),
            secret,
            purpose="ping",
            request_signature=headers[SIGNATURE_HEADER],
        )
    except StaleTimestamp:
        return PingResult(url, "clock_skew", "the answer's timestamp is over 5 minutes off")
    except SignatureError as exc:
        return PingResult(url, "bad_answer", f"the answer is not signed with our secret ({exc})")
    return _storage_result(url, answer)


def _storage_result(url: str, answer: bytes) -> PingResult:
    """``ok``, or ``storage_mismatch`` when the sidecar keeps homes elsewhere than
    ``DJFTPD["STORAGE"]`` says (so ``ftp_storage(user)`` would not see uploads)."""
    try:
        theirs = json.loads(answer).get("storage")
    except (ValueError, AttributeError):
        theirs = None
    ours = normalise_location(str(app_settings.STORAGE))
    if isinstance(theirs, str) and theirs != ours:
        return PingResult(
            url,
            "storage_mismatch",
            f'the sidecar stores homes in {theirs!r}, DJFTPD["STORAGE"] says {ours!r}',
        )
    return PingResult(url, "ok", "the sidecar shares our secret")
