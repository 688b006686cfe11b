"""The one client of the sidecars' ops listeners (DESIGN.md sections 2, 7 and 10): which
sidecars there are (:func:`sidecar_urls`), and every signed call Django makes to them::

    from djftpd.sidecar_client import close_sessions, gather_sessions, ping, purge
    purge("http://127.0.0.1:9121/", {"username": "alice"})   # POST cache/purge; HTTP status
    ping("http://127.0.0.1:9121/").status                     # "ok", "secret_mismatch", ...
    for result in gather_sessions():          # every sidecar's live sessions, in parallel
        result.url, result.ok, result.error, result.sessions
    close_sessions(username="alice")          # {url: closed count or None if unreachable}

Each call is a signed ``POST <url><endpoint>`` for its purpose (``cache-purge``, ``ping``,
``sessions``, ``sessions-close``); an answer we read must be signed as that purpose's answer
to our request, or it is not believed. Nothing here raises for network, HTTP or signature
trouble: a sidecar that does not answer comes back with a status or ``ok=False`` and a reason.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.dateparse import parse_datetime

from djftpd.conf import app_settings, secret_bytes
from djftpd.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    StaleTimestamp,
    sign,
    verify,
)
from djftpd.storage import normalise_location

logger = logging.getLogger("djftpd")

#: Seconds to wait for each sidecar: the admin page must stay fast with one sidecar down.
TIMEOUT = 2.0
#: Most bytes of one answer (1,000 sessions of about 400 bytes each, with room to spare).
MAX_ANSWER = 4 * 1024 * 1024
#: Most pages fetched from one sidecar (1,000 sessions each).
MAX_PAGES = 10


#: Seconds to wait for a ping's answer (``djftpd_check``).
PING_TIMEOUT = 5.0
#: Seconds to wait for each sidecar's answer to a purge (it runs after a user's save).
PURGE_TIMEOUT = 2.0
#: The sidecar's own default DJFTPD_OPS_LISTEN.
DEFAULT_OPS_LISTEN = "127.0.0.1:9121"

# No proxies from the environment and no redirects: the ops URL is called as configured.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sidecar_urls() -> list[str]:
    """``DJFTPD["SIDECAR_URLS"]`` as a list (a single string is accepted too); when the key is
    not set, :func:`local_sidecar_url` (none when it cannot be known)."""
    if not app_settings.is_set("SIDECAR_URLS"):
        local = local_sidecar_url()
        return [local] if local else []
    urls = app_settings.SIDECAR_URLS or []
    return [urls] if isinstance(urls, str) else [str(url) for url in urls]


def ops_listen() -> str:
    """The DJFTPD_OPS_LISTEN that ``startftpserver`` gives the sidecar: ``DJFTPD["ENV"]``,
    else ``DJFTPD["OPS_LISTEN"]``, else the environment, else the sidecar's default."""
    env = app_settings.ENV or {}
    return str(
        env.get("DJFTPD_OPS_LISTEN")
        or app_settings.OPS_LISTEN
        or os.environ.get("DJFTPD_OPS_LISTEN")
        or DEFAULT_OPS_LISTEN
    )


def local_sidecar_url() -> str | None:
    """The ops base URL of the sidecar ``startftpserver`` starts here, from :func:`ops_listen`
    (an all-addresses listener is reached on loopback); None when it names no fixed port."""
    host, _, port = ops_listen().rpartition(":")
    if not port.isdigit() or int(port) == 0 or int(port) > 65535:
        return None
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://{f'[{host}]' if ':' in host else host}:{int(port)}/"


@dataclass(frozen=True)
class Answer:
    """A sidecar's HTTP answer to one signed request, whatever its status."""

    status: int
    body: bytes
    headers: Message
    request_signature: str  # what the answer's own signature must bind to


def post(
    base: str, endpoint: str, purpose: str, payload: dict[str, Any], *,
    secret: bytes, timeout: float, max_answer: int,
) -> Answer:  # fmt: skip
    """POST ``payload`` signed for ``purpose`` to ``<base><endpoint>``; the answer, or OSError/
    ValueError when the sidecar cannot be reached. At most ``max_answer + 1`` bytes are read."""
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
            return Answer(
                response.status,
                response.read(max_answer + 1),
                response.headers,
                headers[SIGNATURE_HEADER],
            )
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read(max_answer + 1), exc.headers, headers[SIGNATURE_HEADER])


def verify_answer(answer: Answer, secret: bytes, purpose: str) -> None:
    """SignatureError (StaleTimestamp included) unless ``answer`` is signed as ``purpose``'s
    answer to our request."""
    verify(
        answer.body,
        answer.headers.get(TIMESTAMP_HEADER),
        answer.headers.get(SIGNATURE_HEADER),
        secret,
        purpose=purpose,
        request_signature=answer.request_signature,
    )


def purge(base: str, payload: dict[str, Any], *, secret: bytes) -> int:
    """POST ``payload`` to ``<base>cache/purge``; the HTTP status, or 0 when unreachable
    (logged). The answer's body is not needed: a 200 is the purge done."""
    try:
        answer = post(
            base, "cache/purge", "cache-purge", payload,
            secret=secret, timeout=PURGE_TIMEOUT, max_answer=65536,
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        logger.warning("djftpd: cache purge %s at %s failed: %s", payload, base, exc)
        return 0
    if answer.status != 200:
        logger.error("djftpd: cache purge %s at %s answered %s", payload, base, answer.status)
    else:
        logger.debug("djftpd: cache purge %s sent to %s", payload, base)
    return answer.status


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


def _error_code(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def _refused(url: str, answer: Answer) -> PingResult:
    """A ping answered with an HTTP error, in words."""
    if answer.status == 403 and _error_code(answer.body) == "stale_timestamp":
        return PingResult(
            url, "clock_skew", "the sidecar says our clock is off by over 5 minutes (403)"
        )
    if answer.status == 403:
        return PingResult(
            url,
            "secret_mismatch",
            'the sidecar refused our signature (403): its DJFTPD_SECRET is not DJFTPD["SECRET"]',
        )
    hint = (
        " (not a djftpd ops listener, or a sidecar without /ping)" if answer.status == 404 else ""
    )
    return PingResult(url, "http_error", f"HTTP {answer.status}{hint}")


def ping(base: str, *, secret: bytes | None = None, timeout: float = PING_TIMEOUT) -> PingResult:
    """POST a signed ``{}`` to ``<base>ping`` and check the signed answer: is the sidecar
    reachable and does it share our secret? Never raises for network or HTTP trouble
    (``ImproperlyConfigured`` when no secret is set)."""
    secret = secret_bytes() if secret is None else secret
    url = base.rstrip("/") + "/ping"
    try:
        answer = post(base, "ping", "ping", {}, secret=secret, timeout=timeout, max_answer=65536)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return PingResult(url, "unreachable", str(reason) or type(reason).__name__)
    if answer.status != 200:
        return _refused(url, answer)
    try:
        verify_answer(answer, secret, "ping")
    except StaleTimestamp:
        return PingResult(url, "clock_skew", "the answer's timestamp is over 5 minutes off")
    except SignatureError as exc:
        return PingResult(url, "bad_answer", f"the answer is not signed with our secret ({exc})")
    return _storage_result(url, answer.body)


def _storage_result(url: str, body: bytes) -> PingResult:
    """``ok``, or ``storage_mismatch`` when the sidecar keeps homes elsewhere than
    ``DJFTPD["STORAGE"]`` says (so ``ftp_storage(user)`` would not see uploads)."""
    try:
        theirs = json.loads(body).get("storage")
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
    try:
        answer = post(
            base, endpoint, purpose, payload,
            secret=secret, timeout=timeout, max_answer=MAX_ANSWER,
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        raise SidecarError(f"unreachable: {getattr(exc, 'reason', exc)}") from None
    if answer.status != 200:
        hint = {403: " (refused our signature: is DJFTPD_SECRET the same?)", 404: " (too old?)"}
        raise SidecarError(f"HTTP {answer.status}{hint.get(answer.status, '')}")
    if len(answer.body) > MAX_ANSWER:
        raise SidecarError("answer too large")
    try:
        verify_answer(answer, secret, purpose)
        return json.loads(answer.body)
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
