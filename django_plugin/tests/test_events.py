"""The events endpoint: validation, idempotence, signals (DESIGN.md section 2)."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.db import OperationalError, connection, transaction
from django.urls import reverse
from django.utils.timezone import get_default_timezone, make_naive

from djftpd import events as events_module
from djftpd.events import MAX_BATCH, rfc3339
from djftpd.models import FTPEvent, FTPEventReceipt
from djftpd.signals import EVENT_SIGNALS, Sidecar, ftp_file_received, ftp_login
from tests.conftest import assert_unsigned

pytestmark = pytest.mark.django_db

_counter = iter(range(1, 10**9))


def event(**overrides: Any) -> dict[str, Any]:
    """A valid upload event by alice, with a fresh id unless ``id`` is given."""
    data = {
        "id": f"ev-{next(_counter)}",
        "type": "file_received",
        "time": "2026-11-25T15:04:05.123456789Z",
        "session": "s-1",
        "username": "alice",
        "client_ip": "192.0.2.10",
        "path": "/reports/q1.txt",
        "to_path": None,
        "bytes": 13,
        "duration_ms": 7,
    }
    data.update(overrides)
    return data


@pytest.fixture
def post_events(post_signed, django_capture_on_commit_callbacks):
    """POST ``{"events": [...]}`` signed, running the on-commit callbacks (the signals)."""

    def post(*items: dict[str, Any], body: Any = None, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return post_signed(
                "djftpd:events", {"events": list(items)} if body is None else body, **kwargs
            )

    return post


@pytest.fixture
def received():
    """Every djftpd signal sent during the test, as (signal name, kwargs), in order."""
    calls: list[tuple[str, dict[str, Any]]] = []
    receivers = {}
    for type_, signal in EVENT_SIGNALS.items():

        def receiver(sender: Any, _type: str = type_, **kwargs: Any) -> None:
            calls.append((_type, {"sender": sender, **kwargs}))

        receivers[signal] = receiver
        signal.connect(receiver)
    yield calls
    for signal, receiver in receivers.items():
        signal.disconnect(receiver)


def test_batch_is_accepted_stored_and_answer_signed(alice, post_events, assert_signed):
    upload = event(id="up-1")
    rename = event(
        id="mv-1", type="file_renamed", path="/a.txt", to_path="/b.txt", bytes=None,
        duration_ms=None, time="2026-11-25T16:04:05+01:00",
    )  # fmt: skip

    response = post_events(upload, rename)

    assert (response.status_code, response.json()) == (200, {"accepted": 2, "rejected": []})
    assert_signed(response)
    row = FTPEvent.objects.get(id="up-1")
    assert (row.type, row.session, row.username, row.user, row.client_ip) == (
        "file_received", "s-1", "alice", alice, "192.0.2.10",
    )  # fmt: skip
    assert (row.path, row.to_path, row.bytes, row.duration_ms) == ("/reports/q1.txt", "", 13, 7)
    assert row.time == datetime(2026, 11, 25, 15, 4, 5, 123456, tzinfo=timezone.utc)
    moved = FTPEvent.objects.get(id="mv-1")
    assert (moved.path, moved.to_path, moved.bytes) == ("/a.txt", "/b.txt", None)
    assert moved.time == datetime(2026, 11, 25, 15, 4, 5, tzinfo=timezone.utc)
    assert set(FTPEventReceipt.objects.values_list("id", flat=True)) == {"up-1", "mv-1"}


def test_empty_batch_is_accepted(post_events):
    assert post_events().json() == {"accepted": 0, "rejected": []}


def test_wrong_method_is_405(client):
    response = client.get(reverse("djftpd:events"))

    assert response.status_code == 405
    assert response.json() == {"ok": False, "error": "method_not_allowed"}
    assert_unsigned(response)


def test_bad_signature_is_403_and_applies_nothing(post_events, received):
    response = post_events(event(), sign_with="another-secret-0123456789abcdef-0123")

    assert (response.status_code, response.json()) == (403, {"ok": False, "error": "bad_signature"})
    assert not FTPEventReceipt.objects.exists()
    assert received == []


INVALID_EVENTS = {
    "not an object": ("x", "must be a JSON object"),
    "missing field": ({k: v for k, v in event().items() if k != "session"}, "missing field"),
    "unknown type": (event(type="file_eaten"), "field 'type' must be a known event type"),
    "time without zone": (event(time="2026-11-25T15:04:05"), "RFC 3339"),
    "time not a date": (event(time="2026-02-30T15:04:05Z"), "RFC 3339"),
    "time not a string": (event(time=1764083045), "must be a string"),
    "negative bytes": (event(bytes=-1), "field 'bytes' must be a non-negative integer"),
    "boolean bytes": (event(bytes=True), "field 'bytes' must be a non-negative integer"),
    "float duration": (event(duration_ms=1.5), "field 'duration_ms' must be a non-negative"),
    "username not a string": (event(username=7), "field 'username' must be a string"),
    "bad client_ip": (event(client_ip="alice"), "field 'client_ip' must be an IP address"),
    "empty id": (event(id=""), "field 'id' must be 1 to 128 characters"),
    "id too long": (event(id="x" * 129), "field 'id' must be 1 to 128 characters"),
    "session null": (event(session=None), "field 'session' must be a string"),
    "id not a string": (event(id=7), "field 'id' must be a string"),
}


@pytest.mark.parametrize(("bad", "detail"), INVALID_EVENTS.values(), ids=INVALID_EVENTS.keys())
def test_an_invalid_event_is_rejected_alone(
    alice, post_events, received, assert_signed, bad, detail
):
    """One bad event must not hold back the others: they are stored and signalled, the bad
    one is named in "rejected" (by its id, "" when it has none) and never stored."""
    good = event(id="good")

    response = post_events(good, bad)

    assert response.status_code == 200
    assert_signed(response)
    answer = response.json()
    assert answer["accepted"] == 1
    [rejected] = answer["rejected"]
    expected_id = bad.get("id") if isinstance(bad, dict) else ""
    assert rejected["id"] == (expected_id if isinstance(expected_id, str) else "")
    assert detail in rejected["error"]
    assert list(FTPEventReceipt.objects.values_list("id", flat=True)) == ["good"]
    assert list(FTPEvent.objects.values_list("id", flat=True)) == ["good"]
    assert [kwargs["event_id"] for _, kwargs in received] == ["good"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "missing field 'events'"),
        ({"events": {"id": "x"}}, "field 'events' must be a list"),
        ({"events": [{}] * (MAX_BATCH + 1)}, f"more than {MAX_BATCH} events"),
    ],
    ids=["no events", "not a list", "too many"],
)
def test_invalid_batch_is_400(post_events, body, detail):
    response = post_events(body=body)

    assert (response.status_code, response.json()["error"]) == (400, "bad_request")
    assert detail in response.json()["detail"]
    assert not FTPEventReceipt.objects.exists()


def test_body_over_64_kib_is_413(post_events):
    response = post_events(event(path="/" + "x" * 65536))

    assert (response.status_code, response.json()["error"]) == (413, "request_too_large")
    assert not FTPEventReceipt.objects.exists()


def test_an_id_twice_in_one_batch_is_stored_and_signalled_once(alice, post_events, received):
    response = post_events(event(id="same"), event(id="same", path="/other"))

    assert response.json() == {"accepted": 2, "rejected": []}
    assert list(FTPEvent.objects.values_list("id", "path")) == [("same", "/reports/q1.txt")]
    assert [kwargs["event_id"] for _, kwargs in received] == ["same"]


NUL_EVENTS = {
    "username": {"type": "login_failed", "username": "a\x00b", "path": None, "bytes": None},
    "path": {"path": "/a\x00b"},
    "to_path": {"type": "file_renamed", "to_path": "/b\x00"},
    "session": {"session": "s\x00"},
    "id": {"id": "ev\x00"},
}


@pytest.mark.parametrize("field", NUL_EVENTS)
def test_an_event_with_nul_is_rejected_and_the_rest_stored(
    alice, post_events, received, assert_signed, field
):
    """The regression of issue 12 item 2: ``USER a<NUL>b`` gave a login_failed event that
    PostgreSQL refuses; the whole batch answered 500 and the sidecar retried it forever."""
    bad = event(**{"id": "bad", "duration_ms": None, **NUL_EVENTS[field]})

    response = post_events(bad, event(id="good"))

    assert response.status_code == 200
    assert_signed(response)
    assert response.json() == {
        "accepted": 1,
        "rejected": [{"id": bad["id"], "error": f"field {field!r} must not contain NUL"}],
    }
    assert list(FTPEvent.objects.values_list("id", flat=True)) == ["good"]
    assert list(FTPEventReceipt.objects.values_list("id", flat=True)) == ["good"]
    assert [kwargs["event_id"] for _, kwargs in received] == ["good"]


def test_other_control_characters_are_stored_as_sent(alice, post_events):
    """Control characters other than NUL are legal in file names and every database keeps
    them; the event is stored as it came."""
    response = post_events(event(id="ctl", path="/a\x01\x1b[31m\x7f.txt"))

    assert response.json() == {"accepted": 1, "rejected": []}
    assert FTPEvent.objects.get(id="ctl").path == "/a\x01\x1b[31m\x7f.txt"


def test_long_username_and_session_are_cut_to_the_column(alice, post_events, received):
    response = post_events(event(id="long", username="u" * 1000, session="s" * 1000))

    assert response.json() == {"accepted": 1, "rejected": []}
    row = FTPEvent.objects.get(id="long")
    assert (row.username, row.session) == ("u" * 255, "s" * 128)
    assert received[0][1]["username"] == "u" * 1000  # the signal gets what was sent


@pytest.mark.parametrize("time", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
@pytest.mark.parametrize("use_tz", [True, False], ids=["USE_TZ", "no USE_TZ"])
def test_a_time_out_of_range_is_rejected(post_events, settings, time, use_tz):
    settings.USE_TZ = use_tz

    response = post_events(event(id="far", time=time), event(id="near"))

    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "rejected": [{"id": "far", "error": "field 'time' is out of range"}],
    }
    assert list(FTPEvent.objects.values_list("id", flat=True)) == ["near"]


@pytest.mark.parametrize("use_tz", [True, False], ids=["USE_TZ", "no USE_TZ"])
def test_events_are_stored_under_either_use_tz(alice, post_events, received, settings, use_tz):
    """Issue 14 item 1: with USE_TZ = False every batch answered 500 (an aware datetime
    handed to the database). Stored naive in TIME_ZONE then, as Django does; the signal
    still gets the aware time."""
    settings.USE_TZ = use_tz
    utc = datetime(2026, 11, 25, 15, 4, 5, 500000, tzinfo=timezone.utc)

    response = post_events(event(id="t", time="2026-11-25T16:04:05.5+01:00"))

    assert (response.status_code, response.json()) == (200, {"accepted": 1, "rejected": []})
    stored = FTPEvent.objects.get(id="t").time
    assert stored == (utc if use_tz else make_naive(utc, get_default_timezone()))
    assert received[0][1]["time"] == utc
    assert FTPEventReceipt.objects.filter(id="t").exists()


#: A trigger that makes the database itself refuse one activity row (its path is /refused),
#: per backend; no such event can be told apart before the database sees it.
REFUSE_TRIGGER = {
    "sqlite": (
        ["CREATE TRIGGER djftpd_test_refuse BEFORE INSERT ON djftpd_ftpevent "
         "WHEN NEW.path = '/refused' BEGIN SELECT RAISE(ABORT, 'refused by a test'); END"],
        ["DROP TRIGGER djftpd_test_refuse"],
    ),
    "postgresql": (
        ["CREATE FUNCTION djftpd_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
         "IF NEW.path = '/refused' THEN RAISE EXCEPTION 'refused by a test' "
         "USING ERRCODE = '22000'; END IF; RETURN NEW; END $$",
         "CREATE TRIGGER djftpd_test_refuse BEFORE INSERT ON djftpd_ftpevent "
         "FOR EACH ROW EXECUTE FUNCTION djftpd_test_refuse()"],
        ["DROP TRIGGER djftpd_test_refuse ON djftpd_ftpevent",
         "DROP FUNCTION djftpd_test_refuse()"],
    ),
    "mysql": (
        ["CREATE TRIGGER djftpd_test_refuse BEFORE INSERT ON djftpd_ftpevent FOR EACH ROW "
         "BEGIN IF NEW.path = '/refused' THEN SIGNAL SQLSTATE '22000' "
         "SET MESSAGE_TEXT = 'refused by a test', MYSQL_ERRNO = 1406; END IF; END"],
        ["DROP TRIGGER djftpd_test_refuse"],
    ),
}  # fmt: skip


@pytest.fixture
def refusing_database():
    create, drop = REFUSE_TRIGGER[connection.vendor]
    with connection.cursor() as cursor:
        for sql in create:
            cursor.execute(sql)
    yield
    with connection.cursor() as cursor:
        for sql in drop:
            cursor.execute(sql)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("atomic_request", [False, True], ids=["autocommit", "ATOMIC_REQUESTS"])
def test_an_event_the_database_refuses_is_rejected_and_the_rest_stored(
    alice, refusing_database, post_signed, received, assert_signed, caplog, atomic_request
):
    """A database error on the batch falls back to one event per savepoint: only the event
    the database refuses is rejected, never a 500 for the batch. Also inside the request's
    transaction (ATOMIC_REQUESTS), which a failed statement must not leave broken."""
    events = [event(id="one"), event(id="bad", path="/refused"), event(id="two")]

    with (
        caplog.at_level(logging.WARNING, logger="djftpd"),
        transaction.atomic() if atomic_request else contextlib.nullcontext(),
    ):
        # A real transaction here: the signals are sent when it commits.
        response = post_signed("djftpd:events", {"events": events})

    assert response.status_code == 200
    assert_signed(response)
    assert response.json() == {
        "accepted": 2,
        "rejected": [{"id": "bad", "error": "refused by the database"}],
    }
    assert set(FTPEvent.objects.values_list("id", flat=True)) == {"one", "two"}
    assert set(FTPEventReceipt.objects.values_list("id", flat=True)) == {"one", "two"}
    assert [kwargs["event_id"] for _, kwargs in received] == ["one", "two"]
    assert any("bad" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


def test_an_unavailable_database_is_a_signed_503_to_retry(post_events, assert_signed, monkeypatch):
    """An outage is not the events' fault: nothing is rejected (the sidecar would drop
    them), the answer says to try again later. Fault injection: no outage on demand."""

    def unavailable(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(events_module, "_insert_rows", unavailable)

    response = post_events(event(id="a"))

    assert (response.status_code, response.json()) == (
        503, {"ok": False, "error": "database_unavailable"},
    )  # fmt: skip
    assert_signed(response)
    assert not FTPEventReceipt.objects.exists()


def test_redelivered_events_fire_once_and_are_stored_once(alice, post_events, received):
    first, second, third = event(id="a"), event(id="b"), event(id="c")

    assert post_events(first, second).json() == {"accepted": 2, "rejected": []}
    assert post_events(second, first, third).json() == {"accepted": 3, "rejected": []}

    assert [kwargs["event_id"] for _, kwargs in received] == ["a", "b", "c"]
    assert FTPEvent.objects.count() == FTPEventReceipt.objects.count() == 3


def test_without_activity_log_no_rows_but_still_idempotent(alice, post_events, received, settings):
    settings.DJFTPD = {**settings.DJFTPD, "ACTIVITY_LOG": False}

    post_events(event(id="a"))
    post_events(event(id="a"), event(id="b"))

    assert not FTPEvent.objects.exists()
    assert [kwargs["event_id"] for _, kwargs in received] == ["a", "b"]


@pytest.mark.parametrize("type_", EVENT_SIGNALS)
def test_each_type_sends_its_signal_with_the_documented_kwargs(alice, post_events, received, type_):
    post_events(event(id="e-1", type=type_, to_path="/to"))

    assert received == [
        (
            type_,
            {
                "sender": Sidecar,
                "signal": EVENT_SIGNALS[type_],
                "event_id": "e-1",
                "username": "alice",
                "user": alice,
                "path": "/reports/q1.txt",
                "to_path": "/to",
                "bytes": 13,
                "duration_ms": 7,
                "client_ip": "192.0.2.10",
                "session": "s-1",
                "time": datetime(2026, 11, 25, 15, 4, 5, 123456, tzinfo=timezone.utc),
                "protocol": None,
            },
        )
    ]


def test_user_is_none_before_login_and_for_unknown_names(alice, post_events, received):
    post_events(
        event(type="connect", username=None, path=None, bytes=None, duration_ms=None),
        event(type="login_failed", username="mallory", path=None, bytes=None, duration_ms=None),
    )

    assert [(kwargs["username"], kwargs["user"]) for _, kwargs in received] == [
        (None, None),
        ("mallory", None),
    ]
    assert list(FTPEvent.objects.order_by("type").values_list("username", "user")) == [
        ("", None),
        ("mallory", None),
    ]


def test_signals_are_sent_only_on_commit(post_signed, django_capture_on_commit_callbacks, received):
    with django_capture_on_commit_callbacks() as callbacks:
        post_signed("djftpd:events", {"events": [event(), event()]})

    assert received == []
    assert len(callbacks) == 1  # one callback sends the whole batch, in order
    callbacks[0]()
    assert len(received) == 2


def test_signals_follow_batch_order(post_events, received):
    types = ["connect", "login", "file_received", "logout", "disconnect"]

    post_events(*(event(type=t) for t in types))

    assert [name for name, _ in received] == types


def test_raising_receiver_skips_neither_other_receivers_nor_events(post_events, received, caplog):
    def broken(sender: Any, *, event_id: str, **kwargs: Any) -> None:
        if event_id == "boom":
            raise RuntimeError("receiver bug")

    ftp_file_received.connect(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="djftpd"):
            response = post_events(event(id="boom"), event(id="fine"))
    finally:
        ftp_file_received.disconnect(broken)

    assert (response.status_code, response.json()) == (200, {"accepted": 2, "rejected": []})
    assert [kwargs["event_id"] for _, kwargs in received] == ["boom", "fine"]
    [record] = [r for r in caplog.records if r.name == "djftpd"]
    assert record.levelno == logging.ERROR
    assert "boom" in record.getMessage()
    assert isinstance(record.exc_info[1], RuntimeError)


def assert_concurrent_delivery_is_retried(
    post_events: Any, received: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Posts "a", then "a" and "b" with seen_ids stale once (as when a concurrent delivery
    inserted "a" in between): the batch must be looked at again and only "b" fire anew."""
    post_events(event(id="a"))
    real_seen_ids = events_module.seen_ids
    calls: list[Any] = []

    def stale_first(ids):
        calls.append(ids)
        return set() if len(calls) == 1 else real_seen_ids(ids)

    monkeypatch.setattr(events_module, "seen_ids", stale_first)

    response = post_events(event(id="a"), event(id="b"))

    assert response.status_code == 200
    assert len(calls) == 2
    assert [kwargs["event_id"] for _, kwargs in received] == ["a", "b"]


def test_a_concurrent_delivery_of_the_same_ids_is_retried(post_events, received, monkeypatch):
    """Pins the race of two deliveries of one batch: the receipt insert fails once, the
    batch is looked at again and only the truly new events fire."""
    assert_concurrent_delivery_is_retried(post_events, received, monkeypatch)


def test_signal_receiver_sees_connect_and_login(alice, post_events):
    logins = []

    def on_login(sender: Any, *, user: Any, **kwargs: Any) -> None:
        logins.append(user)

    ftp_login.connect(on_login)
    try:
        post_events(event(type="login", path=None, bytes=None, duration_ms=None))
    finally:
        ftp_login.disconnect(on_login)

    assert logins == [alice]


class TestRFC3339:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2026-11-25T15:04:05Z", datetime(2026, 11, 25, 15, 4, 5, tzinfo=timezone.utc)),
            ("2026-11-25t15:04:05z", datetime(2026, 11, 25, 15, 4, 5, tzinfo=timezone.utc)),
            (
                "2026-11-25T15:04:05.123456789Z",
                datetime(2026, 11, 25, 15, 4, 5, 123456, tzinfo=timezone.utc),
            ),
            (
                "2026-11-25T15:04:05.5Z",
                datetime(2026, 11, 25, 15, 4, 5, 500000, tzinfo=timezone.utc),
            ),
            (
                "2026-11-25T15:04:05-05:30",
                datetime(2026, 11, 25, 15, 4, 5, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
            ),
        ],
    )
    def test_valid(self, text, expected):
        parsed = rfc3339(text)

        assert parsed == expected
        assert parsed.utcoffset() == expected.utcoffset()

    @pytest.mark.parametrize(
        "text",
        ["2026-11-25", "2026-11-25T15:04:05", "2026-11-25T25:00:00Z", "2026-11-25T15:04:05.Z",
         "2026-11-25T15:04:60Z", " 2026-11-25T15:04:05Z", "2026-11-25T15:04:05+0100"],
    )  # fmt: skip
    def test_invalid(self, text):
        with pytest.raises(ValueError, match="RFC 3339"):
            rfc3339(text)


@pytest.mark.parametrize(("protocol", "stored"), [("sftp", "sftp"), ("ftps", "ftps"), (None, "")])
def test_the_protocol_is_stored_and_filterable(alice, post_events, admin_client, protocol, stored):
    item = event(id="p-1")
    if protocol is not None:
        item["protocol"] = protocol
    post_events(item)

    assert FTPEvent.objects.get(id="p-1").protocol == stored
    if protocol:
        response = admin_client.get("/admin/djftpd/ftpevent/", {"protocol": protocol})
        assert response.status_code == 200
        assert list(response.context["cl"].queryset.values_list("id", flat=True)) == ["p-1"]


def test_a_signal_nobody_receives_is_not_built(alice, post_events, monkeypatch):
    """Only djftpd's legacy bridge listens and no ftp_handler is set: nothing is sent, not
    even the keyword arguments are built. The events are stored all the same."""
    built = []
    real = events_module.Event.signal_kwargs

    def counted(self: Any, user: Any) -> dict[str, Any]:
        built.append(self.id)
        return real(self, user)

    monkeypatch.setattr(events_module.Event, "signal_kwargs", counted)
    logins = []

    def on_login(sender: Any, *, event_id: str, **kwargs: Any) -> None:
        logins.append(event_id)

    ftp_login.connect(on_login)
    try:
        post_events(event(id="up"), event(id="in", type="login", path=None))
    finally:
        ftp_login.disconnect(on_login)

    assert built == logins == ["in"]
    assert FTPEventReceipt.objects.count() == 2


SESSION = ("connect", "login", "logout", "disconnect")


def session_events(session: str = "s-9", length: int = 1500) -> list[dict[str, Any]]:
    """The four events of one FTP session, as the sidecar sends them."""
    return [
        event(
            id=f"{session}-{type_}",
            type=type_,
            session=session,
            path=None,
            bytes=None,
            username=None if type_ == "connect" else "alice",
            duration_ms=length if type_ == "disconnect" else None,
        )
        for type_ in SESSION
    ]


@pytest.fixture
def compact(settings):
    settings.DJFTPD = {**settings.DJFTPD, "COMPACT_ACTIVITY_LOG": True}


def test_compact_log_keeps_a_session_in_its_login_and_logout_rows(
    alice, post_events, received, compact
):
    assert post_events(*session_events()).json() == {"accepted": 4, "rejected": []}

    rows = {row.type: row for row in FTPEvent.objects.all()}
    assert set(rows) == {"login", "logout"}
    assert (rows["logout"].duration_ms, rows["login"].duration_ms) == (1500, None)
    # The rows are the receipts of login and logout; connect and disconnect keep theirs.
    assert set(FTPEventReceipt.objects.values_list("id", flat=True)) == {
        "s-9-connect", "s-9-disconnect",
    }  # fmt: skip
    assert [name for name, _ in received] == list(SESSION)


def test_compact_log_redelivered_session_fires_nothing_twice(
    alice, post_events, received, compact
):
    post_events(*session_events()[:2])
    post_events(*session_events())
    post_events(*reversed(session_events()))

    assert [kwargs["event_id"] for _, kwargs in received] == [f"s-9-{t}" for t in SESSION]
    assert FTPEvent.objects.count() == FTPEventReceipt.objects.count() == 2


def test_compact_log_rows_recorded_before_are_known_after_it_is_turned_off(
    alice, post_events, received, settings, compact
):
    post_events(*session_events())
    settings.DJFTPD = {**settings.DJFTPD, "COMPACT_ACTIVITY_LOG": False}

    post_events(*session_events())

    assert len(received) == 4


def test_compact_log_concurrent_delivery_is_retried(
    alice, post_events, received, monkeypatch, compact
):
    """A row that is a receipt is inserted without ignoring conflicts: a concurrent delivery
    of the same ids is an IntegrityError, and the batch is looked at again."""
    assert_concurrent_delivery_is_retried(post_events, received, monkeypatch)
    assert FTPEvent.objects.count() == 2
    assert not FTPEventReceipt.objects.exists()
