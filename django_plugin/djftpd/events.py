"""Events from the sidecar: validate a batch, record it once, send the signals.

The ``events`` view does, for one signed ``{"events": [...]}`` body (DESIGN.md section 2)::

    from djftpd.events import apply_batch, event_batch

    events = event_batch(data["events"])   # ValueError when any event is invalid
    apply_batch(events)                     # receipts (+ activity log) in one transaction,
                                            # then, on commit, one signal per new event

Delivery is at-least-once, so :func:`apply_batch` is idempotent by event id: an id that has a
:class:`~djftpd.models.FTPEventReceipt` is skipped, whether or not the activity log is on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connections, models, router, transaction
from django.db.models.constants import OnConflict
from django.utils.timezone import now as django_now

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


def _event_id(value: Any) -> str:
    value = string(value)
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
    "session": string,
    "username": _optional(string),
    "client_ip": _client_ip,
    "path": _optional(string),
    "to_path": _optional(string),
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
        return cls(**values)

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

    def activity_values(self, user: Any, ops: Any) -> tuple[Any, ...]:
        """This event as an activity log row: values for ACTIVITY_FIELDS, adapted for the
        database by ``ops`` (a connection's operations)."""
        return (
            self.id,
            self.type,
            ops.adapt_datetimefield_value(self.time),
            self.session[:SESSION_MAX_LENGTH],
            (self.username or "")[:USERNAME_MAX_LENGTH],
            user.pk if user is not None else None,
            ops.adapt_ipaddressfield_value(self.client_ip),
            self.path or "",
            self.to_path or "",
            self.bytes,
            self.duration_ms,
        )


def event_batch(value: Any) -> list[Event]:
    """Validate the ``events`` list of a request: every event or none (ValueError)."""
    if not isinstance(value, list):
        raise ValueError("must be a list")
    if len(value) > MAX_BATCH:
        raise ValueError(f"has more than {MAX_BATCH} events")
    events: list[Event] = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        try:
            event = Event.from_json(item)
        except ValueError as exc:
            raise ValueError(f"item {index}: {exc}") from None
        if event.id in seen:
            raise ValueError(f"item {index}: duplicate id")
        seen.add(event.id)
        events.append(event)
    return events


def users_by_username(usernames: Iterable[str | None]) -> dict[str, Any]:
    """The users whose ``USERNAME_FIELD`` is among ``usernames``, by username."""
    names = {name for name in usernames if name}
    if not names:
        return {}
    User = get_user_model()
    users = User._default_manager.filter(**{f"{User.USERNAME_FIELD}__in": names})
    return {user.get_username(): user for user in users}


def seen_ids(ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` have a receipt already."""
    return set(FTPEventReceipt.objects.filter(id__in=ids).values_list("id", flat=True))


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
)


def record(events: Sequence[Event], users: dict[str, Any]) -> list[Event]:
    """Store receipts (and activity rows) for the events not seen before, atomically; return
    those new events, in batch order."""
    ids = [event.id for event in events]
    using = router.db_for_write(FTPEventReceipt)
    ops = connections[using].ops
    for attempt in range(RECORD_ATTEMPTS):
        try:
            with transaction.atomic(using=using):
                seen = seen_ids(ids)
                new = [event for event in events if event.id not in seen]
                now = ops.adapt_datetimefield_value(django_now())
                _insert_rows(
                    using, FTPEventReceipt, ("id", "received_at"), [(e.id, now) for e in new]
                )
                if app_settings.ACTIVITY_LOG and new:
                    rows = [e.activity_values(users.get(e.username or ""), ops) for e in new]
                    # ignore_conflicts: a row may outlive its pruned receipt.
                    _insert_rows(using, FTPEvent, ACTIVITY_FIELDS, rows, ignore_conflicts=True)
                return new
        except IntegrityError:
            # Another request recorded some of these ids since we looked; look again.
            if attempt == RECORD_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def send_signals(events: Iterable[Event], users: dict[str, Any]) -> None:
    """Send each event's signal to every receiver; a receiver that raises is logged and
    skipped, so the other receivers and events still run."""
    for event in events:
        signal = EVENT_SIGNALS[event.type]
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


def apply_batch(events: Sequence[Event]) -> int:
    """Record a validated batch and, once it is committed, signal its new events.

    Returns how many events were new.
    """
    users = users_by_username(event.username for event in events)
    new = record(events, users)
    if new:
        transaction.on_commit(lambda: send_signals(new, users))
    return len(new)
