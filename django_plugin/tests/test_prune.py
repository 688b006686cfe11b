"""manage.py djftpd_prune_events."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from djftpd.management.commands.djftpd_prune_events import parse_duration
from djftpd.models import FTPEvent, FTPEventReceipt

pytestmark = pytest.mark.django_db


def make(event_id: str, age: timedelta) -> None:
    when = timezone.now() - age
    FTPEvent.objects.create(
        id=event_id, type="connect", time=when, session="s", client_ip="192.0.2.1"
    )
    FTPEventReceipt.objects.create(id=event_id, received_at=when)


def test_deletes_only_what_is_older():
    make("old", timedelta(days=91))
    make("recent", timedelta(days=89))
    out = StringIO()

    call_command("djftpd_prune_events", "--older-than", "90d", stdout=out)

    assert list(FTPEvent.objects.values_list("id", flat=True)) == ["recent"]
    assert list(FTPEventReceipt.objects.values_list("id", flat=True)) == ["recent"]
    assert "Deleted 1 FTP events and 1 event receipts older than 90 days" in out.getvalue()


def test_default_is_90_days():
    make("old", timedelta(days=91))
    make("recent", timedelta(days=1))

    call_command("djftpd_prune_events", stdout=StringIO())

    assert list(FTPEvent.objects.values_list("id", flat=True)) == ["recent"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90d", timedelta(days=90)), ("36h", timedelta(hours=36)), ("2w", timedelta(weeks=2)),
     ("15m", timedelta(minutes=15)), ("30s", timedelta(seconds=30))],
)  # fmt: skip
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["90", "d", "-1d", "1.5h", "90 days"])
def test_bad_duration_is_a_command_error(text):
    with pytest.raises(CommandError, match="is not a duration"):
        call_command("djftpd_prune_events", f"--older-than={text}")
