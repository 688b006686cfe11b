"""The events endpoint: validation, idempotence, signals (DESIGN.md section 2)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.urls import reverse

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

    assert (response.status_code, response.json()) == (200, {"accepted": 2})
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
    assert post_events().json() == {"accepted": 0}


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
    "not an object": ("x", "item 1: must be a JSON object"),
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
}


@pytest.mark.parametrize(("bad", "detail"), INVALID_EVENTS.values(), ids=INVALID_EVENTS.keys())
def test_one_invalid_event_rejects_the_whole_batch(
    alice, post_events, received, assert_signed, bad, detail
):
    response = post_events(event(), bad)

    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert detail in response.json()["detail"]
    assert_signed(response)
    assert not FTPEventReceipt.objects.exists()
    assert not FTPEvent.objects.exists()
    assert received == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "missing field 'events'"),
        ({"events": {"id": "x"}}, "field 'events' must be a list"),
        ({"events": [event(id="same"), event(id="same")]}, "item 1: duplicate id"),
        ({"events": [{}] * (MAX_BATCH + 1)}, f"more than {MAX_BATCH} events"),
    ],
    ids=["no events", "not a list", "duplicate id", "too many"],
)
def test_invalid_batch_is_400(post_events, body, detail):
    response = post_events(body=body)

    assert (response.status_code, response.json()["error"]) == (400, "bad_request")
    assert detail in response.json()["detail"]
    assert not FTPEventReceipt.objects.exists()


def test_redelivered_events_fire_once_and_are_stored_once(alice, post_events, received):
    first, second, third = event(id="a"), event(id="b"), event(id="c")

    assert post_events(first, second).json() == {"accepted": 2}
    assert post_events(second, first, third).json() == {"accepted": 3}

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

    assert (response.status_code, response.json()) == (200, {"accepted": 2})
    assert [kwargs["event_id"] for _, kwargs in received] == ["boom", "fine"]
    [record] = [r for r in caplog.records if r.name == "djftpd"]
    assert record.levelno == logging.ERROR
    assert "boom" in record.getMessage()
    assert isinstance(record.exc_info[1], RuntimeError)


def test_a_concurrent_delivery_of_the_same_ids_is_retried(post_events, received, monkeypatch):
    """Pins the race of two deliveries of one batch: the receipt insert fails once, the
    batch is looked at again and only the truly new events fire."""
    post_events(event(id="a"))
    real_seen_ids = events_module.seen_ids
    calls = []

    def stale_first(ids):
        calls.append(ids)
        return set() if len(calls) == 1 else real_seen_ids(ids)

    monkeypatch.setattr(events_module, "seen_ids", stale_first)

    response = post_events(event(id="a"), event(id="b"))

    assert response.status_code == 200
    assert len(calls) == 2
    assert [kwargs["event_id"] for _, kwargs in received] == ["a", "b"]


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
