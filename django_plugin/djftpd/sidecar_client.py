"""Live sessions of the running sidecars (DESIGN.md section 10), for the admin::

    from djftpd.sidecar_client import gather_sessions, close_sessions
    for result in gather_sessions():          # every DJFTPD["SIDECAR_URLS"], in parallel
        result.url, result.ok, result.error, result.sessions
    close_sessions(username="alice")          # {url: closed count or None if unreachable}

Each call is a signed ``POST <url>sessions`` (purpose ``sessions``) or ``<url>sessions/close``
(purpose ``sessions-close``); the answer must be signed as that purpose's answer to our
request, or it is not believed. Nothing here raises for network, HTTP or signature trouble:
a sidecar that does not answer comes back with ``ok=False`` and a reason.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.dateparse import parse_datetime

from djftpd.conf import secret_bytes
from djftpd.receivers import _opener, sidecar_urls
from djftpd.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, sign, verify

logger = logging.getLogger("djftpd")

#: Seconds to wait for each sidecar: the admin page must stay fast with one sidecar down.
TIMEOUT = 2.0
#: Most bytes of one answer (1,000 sessions of about 400 bytes each, with room to spare).
MAX_ANSWER = 4 * 1024 * 1024
#: Most pages fetched from one sidecar (1,000 sessions each).
MAX_PAGES = 10


class SidecarError(Exception):
    """A sidecar did not answer, or not believably; the message is for people."""


@dataclass
class SidecarSessions:
    """What one sidecar said: its sessions, or why there are none."""

    url: str
    sessions: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    truncated: bool = False  # more than MAX_PAGES pages

    @property
    def ok(self) -> bool:
        return not self.error


def call(base: str, endpoint: str, purpose: str, payload: dict[str, Any], timeout: float) -> Any:
    """POST ``payload`` signed for ``purpose`` to ``<base><endpoint>``; the verified JSON answer,
    or :class:`SidecarError`."""
    try:
        secret = secret_bytes()
    except ImproperlyConfigured as exc:
        raise SidecarError(str(exc)) from None
    body = json.dumps(payload).encode()
    headers = sign(body, secret, purpose=purpose)
    request = urllib.request.Request(
        base.rstrip("/") + "/" + endpoint,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            answer = response.read(MAX_ANSWER + 1)
            answer_headers = response.headers
    except urllib.error.HTTPError as exc:
        hint = {403: " (refused our signature: is DJFTPD_SECRET the same?)", 404: " (too old?)"}
        raise SidecarError(f"HTTP {exc.code}{hint.get(exc.code, '')}") from None
    except (OSError, ValueError) as exc:
        raise SidecarError(f"unreachable: {getattr(exc, 'reason', exc)}") from None
    if len(answer) > MAX_ANSWER:
        raise SidecarError("answer too large")
    try:
        verify(
            answer,
            answer_headers.get(TIMESTAMP_HEADER),
            answer_headers.get(SIGNATURE_HEADER),
            secret,
            purpose=purpose,
            request_signature=headers[SIGNATURE_HEADER],
        )
        return json.loads(answer)
    except SignatureError as exc:
        raise SidecarError(f"answer not signed with our secret ({exc})") from None
    except ValueError:
        raise SidecarError("answer is not JSON") from None


def _datetime(value: Any) -> datetime | None:
    try:
        return parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _session(raw: Any) -> dict[str, Any] | None:
    """One session of an answer, with ``connected_at`` (and a transfer's ``started``) as
    datetimes; None when it is not shaped like one."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        return None
    session = dict(raw)
    session["connected_at"] = _datetime(raw.get("connected_at"))
    transfer = raw.get("transfer")
    session["transfer"] = dict(transfer) if isinstance(transfer, dict) else None
    if session["transfer"]:
        session["transfer"]["started"] = _datetime(transfer.get("started"))
    return session


def fetch_sessions(base: str, timeout: float | None = None) -> SidecarSessions:
    """Every session of one sidecar (at most MAX_PAGES pages), or the reason there are none;
    ``timeout`` (default TIMEOUT) applies to each page."""
    timeout = TIMEOUT if timeout is None else timeout
    result = SidecarSessions(url=base)
    payload: dict[str, Any] = {}
    try:
        for _ in range(MAX_PAGES):
            answer = call(base, "sessions", "sessions", payload, timeout)
            if not isinstance(answer, dict) or not isinstance(answer.get("sessions"), list):
                raise SidecarError("unexpected answer")
            result.sessions += [s for s in map(_session, answer["sessions"]) if s is not None]
            cursor = answer.get("cursor")
            if not isinstance(cursor, str) or not cursor:
                return result
            payload = {"cursor": cursor}
        result.truncated = True
    except SidecarError as exc:
        logger.warning("djftpd: listing sessions at %s failed: %s", base, exc)
        result.error = str(exc)
    return result


def _parallel(fn: Any, urls: list[str]) -> list[Any]:
    if not urls:
        return []
    with ThreadPoolExecutor(max_workers=min(len(urls), 16)) as pool:
        return list(pool.map(fn, urls))


def gather_sessions(
    urls: list[str] | None = None, timeout: float | None = None
) -> list[SidecarSessions]:
    """:func:`fetch_sessions` of every sidecar (default ``DJFTPD["SIDECAR_URLS"]``), in parallel."""
    urls = sidecar_urls() if urls is None else urls
    return _parallel(lambda url: fetch_sessions(url, timeout), urls)


def close_sessions(
    *,
    session: str | None = None,
    username: str | None = None,
    urls: list[str] | None = None,
    timeout: float | None = None,
) -> dict[str, int | None]:
    """Ask every sidecar to end the session ``session`` or every session of ``username``; how
    many each closed (None: it did not answer). Session ids are random, so asking every
    sidecar ends the one session wherever it runs."""
    if (session is None) == (username is None):
        raise ValueError("give session or username")
    payload = {"session": session} if session is not None else {"username": username}
    timeout = TIMEOUT if timeout is None else timeout

    def one(url: str) -> int | None:
        try:
            answer = call(url, "sessions/close", "sessions-close", payload, timeout)
        except SidecarError as exc:
            logger.warning("djftpd: closing %s at %s failed: %s", payload, url, exc)
            return None
        closed = answer.get("closed") if isinstance(answer, dict) else None
        return closed if isinstance(closed, int) else None

    urls = sidecar_urls() if urls is None else urls
    return dict(zip(urls, _parallel(one, urls), strict=True))
