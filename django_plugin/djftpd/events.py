"""Events from the sidecar: validate a batch, record it once, send the signals.

The ``events`` view does, for one signed ``{"events": [...]}`` body (DESIGN.md section 2)::

    from djftpd.events import apply_batch, event_batch

    items = event_batch(data["events"])    # ValueError unless a list of at most MAX_BATCH
    result = apply_batch(items)            # each valid event: receipt (+ activity log) in one
                                           # transaction, then on commit its signal
    result.accepted, result.rejected       # 2, [{"id": "ev-3", "error": "field 'time' ..."}]

Each event stands alone: one that is invalid (or that the database refuses) is rejected with
a short reason and the others are stored, so one bad event never blocks delivery. Delivery is
at-least-once, so :func:`apply_batch` is idempotent by event id: an id that has a
:class:`~djftpd.models.FTPEventReceipt`, or an :class:`~djftpd.models.FTPEvent` row (with
``COMPACT_ACTIVITY_LOG`` the row is the receipt), is skipped, neither stored nor signalled
again nor rejected, whether or not the activity log is on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    models,
    router,
    transaction,
)
from django.db.models.constants import OnConflict
from django.dispatch import Signal
from django.utils.timezone import get_default_timezone, make_naive
from django.utils.timezone import now as django_now

from djftpd import legacy
from djftpd.conf import app_settings
from djftpd.models import (
    EVENT_ID_MAX_LENGTH,
    SESSION_MAX_LENGTH,
    USERNAME_MAX_LENGTH,
    FTPEvent,
    FTPEventReceipt,
)
from djftpd.signals import EVENT_SIGNALS, SENDER
from djftpd.signing import ip_address, one_of, string

logger = logging.getLogger("djftpd")

#: Most events in one request.
MAX_BATCH = 500
#: Largest value of ``bytes`` and ``duration_ms`` (a signed 64-bit column).
MAX_COUNT = 2**63 - 1
#: Attempts at recording a batch when a concurrent request records the same ids meanwhile.
RECORD_ATTEMPTS = 3

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def rfc3339(value: Any) -> datetime:
    """An aware datetime from an RFC 3339 time such as ``2026-11-25T15:04:05.123456789Z``.

    Fractions finer than a microsecond (Go sends nanoseconds) are truncated, which
    ``datetime.fromisoformat`` of Python 3.10 and 3.11 would refuse.
    """
    match = _RFC3339.fullmatch(string(value))
    if not match:
        raise ValueError("must be an RFC 3339 time")
    year, month, day, hour, minute, second, fraction, zulu, sign, tz_h, tz_m = match.groups()
    offset = timedelta(0)
    if not zulu:
        offset = timedelta(hours=int(tz_h), minutes=int(tz_m))
        offset = -offset if sign == "-" else offset
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(offset),
        )
    except ValueError:
        raise ValueError("must be an RFC 3339 time") from None


def _optional(validate: Any) -> Any:
    def check(value: Any) -> Any:
        return None if value is None else validate(value)

    return check


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise ValueError("must be a non-negative integer")
    return value


def text(value: Any) -> str:
    """A string without NUL: no database column can keep one (PostgreSQL refuses it, the
    others cut or mangle it), and no file or user name has one. Other control characters
    are legal in file names and kept."""
    value = string(value)
    if "\x00" in value:
        raise ValueError("must not contain NUL")
    return value


def _event_id(value: Any) -> str:
    value = text(value)
    if not 0 < len(value) <= EVENT_ID_MAX_LENGTH:
        raise ValueError(f"must be 1 to {EVENT_ID_MAX_LENGTH} characters")
    return value


def _event_type(value: Any) -> str:
    if not isinstance(value, str) or value not in EVENT_SIGNALS:
        raise ValueError("must be a known event type")
    return value


def _client_ip(value: Any) -> str:
    # A zone (fe80::1%eth0) is kept on the wire value but dropped for storage.
    return ip_address(string(value).split("%", 1)[0])


_protocol = one_of("ftp", "ftps", "sftp")

EVENT_FIELDS = {
    "id": _event_id,
    "type": _event_type,
    "time": rfc3339,
    "session": text,
    "username": _optional(text),
    "client_ip": _client_ip,
    "path": _optional(text),
    "to_path": _optional(text),
    "bytes": _optional(_count),
    "duration_ms": _optional(_count),
}


@dataclass(frozen=True)
class Event:
    """One validated event; the fields of the wire format, ``time`` parsed."""

    id: str
    type: str
    time: datetime
    session: str
    username: str | None
    client_ip: str
    path: str | None
    to_path: str | None
    bytes: int | None
    duration_ms: int | None
    #: "ftp", "ftps" or "sftp"; None from a sidecar that does not send it. Optional on the
    #: wire (DESIGN.md section 10: events carry the protocol).
    protocol: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Event:
        """Validate one JSON event; ValueError names the first bad field."""
        if not isinstance(data, dict):
            raise ValueError("must be a JSON object")
        values = {}
        for name, validate in EVENT_FIELDS.items():
            if name not in data:
                raise ValueError(f"missing field {name!r}")
            try:
                values[name] = validate(data[name])
            except ValueError as exc:
                raise ValueError(f"field {name!r} {exc}") from None
        if data.get("protocol") is not None:
            try:
                values["protocol"] = _protocol(data["protocol"])
            except ValueError as exc:
                raise ValueError(f"field 'protocol' {exc}") from None
        event = cls(**values)
        event.stored_time()  # a time the database cannot take fails here, not in an INSERT
        return event

    def stored_time(self) -> datetime:
        """``time`` as a DateTimeField keeps it: aware (UTC) with ``USE_TZ``, else naive in
        ``TIME_ZONE``, as Django stores every datetime then (an aware one is refused by
        SQLite and MySQL). ValueError when it falls outside years 1 to 9999 there."""
        try:
            if settings.USE_TZ:
                return self.time.astimezone(timezone.utc)
            return make_naive(self.time, get_default_timezone())
        except (OverflowError, ValueError):
            raise ValueError("field 'time' is out of range") from None

    def signal_kwargs(self, user: Any) -> dict[str, Any]:
        """The keyword arguments of this event's signal (see :mod:`djftpd.signals`)."""
        return {
            "event_id": self.id,
            "username": self.username,
            "user": user,
            "path": self.path,
            "to_path": self.to_path,
            "bytes": self.bytes,
            "duration_ms": self.duration_ms,
            "client_ip": self.client_ip,
            "session": self.session,
            "time": self.time,
            "protocol": self.protocol,
        }

    def activity_values(
        self, user: Any, ops: Any, duration_ms: int | None = None
    ) -> tuple[Any, ...]:
        """This event as an activity log row: values for ACTIVITY_FIELDS, adapted for the
        database by ``ops`` (a connection's operations); ``duration_ms`` stands in for the
        event's own when it has none."""
        return (
            self.id,
            self.type,
            ops.adapt_datetimefield_value(self.stored_time()),
            self.session[:SESSION_MAX_LENGTH],
            (self.username or "")[:USERNAME_MAX_LENGTH],
            user.pk if user is not None else None,
            ops.adapt_ipaddressfield_value(self.client_ip),
            self.path or "",
            self.to_path or "",
            self.bytes,
            self.duration_ms if self.duration_ms is not None else duration_ms,
            self.protocol or "",
        )


def event_batch(value: Any) -> list[Any]:
    """Validate the ``events`` list of a request as a whole (ValueError): a list of at most
    MAX_BATCH items. Its events are validated one by one by :func:`parse_batch`."""
    if not isinstance(value, list):
        raise ValueError("must be a list")
    if len(value) > MAX_BATCH:
        raise ValueError(f"has more than {MAX_BATCH} events")
    return value


#: One rejected event in the answer: ``{"id": <its id, "" without one>, "error": <reason>}``.
Rejection = dict[str, str]


def rejection(item: Any, error: str) -> Rejection:
    """The answer's entry for an event not stored; the reason is a fixed text (no input)."""
    item_id = item.get("id") if isinstance(item, dict) else None
    return {"id": item_id if isinstance(item_id, str) else "", "error": error}


def parse_batch(items: Sequence[Any]) -> tuple[list[Event], list[Rejection]]:
    """The valid events of ``items``, each id once (a repeated id is a redelivery: kept
    once, not rejected), and a rejection for each invalid one."""
    events: list[Event] = []
    rejected: list[Rejection] = []
    seen: set[str] = set()
    for item in items:
        try:
            event = Event.from_json(item)
        except ValueError as exc:
            rejected.append(rejection(item, str(exc)))
            continue
        if event.id not in seen:
            seen.add(event.id)
            events.append(event)
    return events, rejected


@dataclass(frozen=True)
class BatchResult:
    """What :func:`apply_batch` did: ``accepted`` events (stored now or before), ``new`` of
    them stored now, and the ``rejected`` ones, never stored."""

    accepted: int
    new: int
    rejected: list[Rejection]


def users_by_username(usernames: Iterable[str | None]) -> dict[str, Any]:
    """The users whose ``USERNAME_FIELD`` is among ``usernames``, by username."""
    names = {name for name in usernames if name}
    if not names:
        return {}
    User = get_user_model()
    users = User._default_manager.filter(**{f"{User.USERNAME_FIELD}__in": names})
    return {user.get_username(): user for user in users}


def seen_ids(ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` were recorded already: they have a receipt, or an activity row (with
    ``COMPACT_ACTIVITY_LOG`` on, or after it was, the row is the receipt)."""
    seen = set(FTPEventReceipt.objects.filter(id__in=ids).values_list("id", flat=True))
    rest = [id_ for id_ in ids if id_ not in seen]
    if rest:
        seen.update(FTPEvent.objects.filter(id__in=rest).values_list("id", flat=True))
    return seen


def _insert_rows(
    using: str,
    model: type[models.Model],
    fields: Sequence[str],
    rows: list[tuple[Any, ...]],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """INSERT ``rows`` (values already adapted for the database) with one executemany.

    Events arrive by the hundred per second (four per FTP session); ``bulk_create`` spends
    most of a batch's time compiling SQL value by value, a plain executemany does not.
    """
    if not rows:
        return
    connection = connections[using]
    ops = connection.ops
    meta = model._meta
    columns = ", ".join(ops.quote_name(meta.get_field(name).column) for name in fields)
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    sql = (
        f"{ops.insert_statement(on_conflict=on_conflict)} {ops.quote_name(meta.db_table)} "
        f"({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
    )
    if ignore_conflicts:
        sql += ops.on_conflict_suffix_sql([], on_conflict, [], [])
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


ACTIVITY_FIELDS = (
    "id",
    "type",
    "time",
    "session",
    "username",
    "user",
    "client_ip",
    "path",
    "to_path",
    "bytes",
    "duration_ms",
    "protocol",
)


#: Event types that get no activity row of their own with ``COMPACT_ACTIVITY_LOG``.
CONNECTION_TYPES = frozenset({"connect", "disconnect"})


def session_lengths(events: Iterable[Event]) -> dict[str, int]:
    """Session -> its length (``duration_ms`` of its disconnect event), for the sessions
    that end in ``events``."""
    lengths: dict[str, int] = {}
    for event in events:
        if event.type == "disconnect" and event.duration_ms is not None:
            lengths[event.session] = event.duration_ms
    return lengths


def _store(
    using: str, events: Sequence[Event], users: dict[str, Any], lengths: dict[str, int]
) -> None:
    """INSERT the receipts and activity rows of new ``events``; ``lengths`` are the session
    lengths of the batch (:func:`session_lengths`).

    By default every event gets a receipt, and an activity row with ``ACTIVITY_LOG``.
    With ``COMPACT_ACTIVITY_LOG`` (and the activity log on), connect and disconnect get no
    row (a logout row takes its session's length from the disconnect in the batch), and an
    event with a row gets no receipt: the row's primary key is the receipt.
    """
    ops = connections[using].ops
    logged = list(events) if app_settings.ACTIVITY_LOG else []
    receipted = list(events)
    if logged and app_settings.COMPACT_ACTIVITY_LOG:
        logged = [e for e in events if e.type not in CONNECTION_TYPES]
        receipted = [e for e in events if e.type in CONNECTION_TYPES]
    else:
        lengths = {}
    now = ops.adapt_datetimefield_value(django_now())
    _insert_rows(using, FTPEventReceipt, ("id", "received_at"), [(e.id, now) for e in receipted])
    rows = [
        e.activity_values(
            users.get(e.username or ""), ops, lengths.get(e.session) if e.type == "logout" else None
        )
        for e in logged
    ]
    # A row that is not a receipt may outlive its pruned receipt: ignore_conflicts then.
    # A row that is one conflicts only with a concurrent delivery: IntegrityError, retried.
    ignore = not app_settings.COMPACT_ACTIVITY_LOG
    _insert_rows(using, FTPEvent, ACTIVITY_FIELDS, rows, ignore_conflicts=ignore)


def record(
    events: Sequence[Event], users: dict[str, Any], lengths: dict[str, int] | None = None
) -> list[Event]:
    """Store receipts (and activity rows) for the events not seen before, atomically; return
    those new events, in batch order. ``lengths``: :func:`session_lengths` of the batch
    ``events`` belong to (default: of ``events``)."""
    ids = [event.id for event in events]
    if lengths is None:
        lengths = session_lengths(events)
    using = router.db_for_write(FTPEventReceipt)
    for attempt in range(RECORD_ATTEMPTS):
        try:
            with transaction.atomic(using=using):
                seen = seen_ids(ids)
                new = [event for event in events if event.id not in seen]
                _store(using, new, users, lengths)
                return new
        except IntegrityError:
            # Another request recorded some of these ids since we looked; look again.
            if attempt == RECORD_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


#: Database errors that say "not now" (connection lost, deadlock, timeout), not "never this
#: event": the batch is answered 503 and retried, never rejected (the sidecar drops those).
UNAVAILABLE = (OperationalError, InterfaceError)


def record_each(
    events: Sequence[Event], users: dict[str, Any]
) -> tuple[list[Event], list[Rejection]]:
    """Store events one by one, each in its own transaction (a savepoint inside the request's
    one): the new ones, and a rejection for each the database refuses."""
    new: list[Event] = []
    rejected: list[Rejection] = []
    lengths = session_lengths(events)
    for event in events:
        try:
            new += record([event], users, lengths)
        except UNAVAILABLE:
            raise
        except DatabaseError as exc:
            logger.error("djftpd: the database refused event %s (%s); rejected", event.id, exc)
            rejected.append({"id": event.id, "error": "refused by the database"})
    return new, rejected


def wanted(signal: Signal) -> bool:
    """Whether sending ``signal`` can reach anyone: a receiver besides djftpd's legacy bridge
    (connected to every signal), or the bridge when the ``ftp_handler`` has the signal's hook.
    A signal nobody receives is not sent: its keyword arguments are not even built."""
    if not signal.has_listeners(SENDER):
        return False
    return not legacy.bridge_only(signal) or legacy.has_hook(signal)


def send_signals(events: Iterable[Event], users: dict[str, Any]) -> None:
    """Send each event's signal to every receiver; a receiver that raises is logged and
    skipped, so the other receivers and events still run."""
    sending: dict[str, bool] = {}  # event type -> whether its signal reaches anyone
    for event in events:
        signal = EVENT_SIGNALS[event.type]
        if event.type not in sending:
            sending[event.type] = wanted(signal)
        if not sending[event.type]:
            continue
        kwargs = event.signal_kwargs(users.get(event.username or ""))
        for receiver, result in signal.send_robust(SENDER, **kwargs):
            if isinstance(result, Exception):
                logger.error(
                    "djftpd: receiver %r of the %s signal failed on event %s",
                    receiver,
                    event.type,
                    event.id,
                    exc_info=(type(result), result, result.__traceback__),
                )


def apply_batch(items: Sequence[Any]) -> BatchResult:
    """Record the valid events of a batch and, once committed, signal the new ones.

    The batch is stored in one transaction; when the database refuses it, event by event, so
    only the events it refuses are rejected. Raises OperationalError or InterfaceError
    (:data:`UNAVAILABLE`) when the database cannot be used at all: nothing is stored then.
    """
    events, rejected = parse_batch(items)
    for entry in rejected:
        logger.warning("djftpd: event %r rejected: %s", entry["id"], entry["error"])
    users = users_by_username(event.username for event in events)
    try:
        new = record(events, users)
    except UNAVAILABLE:
        raise
    except DatabaseError as exc:
        logger.warning("djftpd: storing %d events failed (%s); one by one", len(events), exc)
        new, refused = record_each(events, users)
        rejected += refused
    if new:
        transaction.on_commit(lambda: send_signals(new, users))
    return BatchResult(accepted=len(items) - len(rejected), new=len(new), rejected=rejected)
