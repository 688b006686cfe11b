"""Delete old FTP activity log rows and event receipts::

    $ python manage.py djftpd_prune_events --older-than 90d
    Deleted 1234 FTP events and 1301 event receipts older than 90 days, 0:00:00.

Durations are a number and a unit: ``s``, ``m``, ``h``, ``d`` or ``w`` (``36h``, ``2w``).
An event id whose receipt is gone is no longer recognised if the sidecar delivers it again,
so keep receipts longer than the sidecar may hold events in its spool (hours, not months).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from djftpd.models import FTPEvent, FTPEventReceipt

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"([0-9]+)([smhdw])")


def parse_duration(value: str) -> timedelta:
    """``"90d"`` -> 90 days; ValueError for anything but a number and one unit."""
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration such as 90d, 36h or 2w")
    number, unit = match.groups()
    return timedelta(**{UNITS[unit]: int(number)})


class Command(BaseCommand):
    help = "Delete FTP activity log entries and event receipts older than a duration."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            default="90d",
            help="Age of the oldest rows kept: a number and s, m, h, d or w (default 90d).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            age = parse_duration(options["older_than"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        cutoff = timezone.now() - age
        events, _ = FTPEvent.objects.filter(time__lt=cutoff).delete()
        receipts, _ = FTPEventReceipt.objects.filter(received_at__lt=cutoff).delete()
        self.stdout.write(
            f"Deleted {events} FTP events and {receipts} event receipts older than {age}."
        )
