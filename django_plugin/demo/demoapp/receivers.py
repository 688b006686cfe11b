"""How a project reacts to FTP activity: receivers of djftpd's signals.

This demo appends one JSON line per signal to ``<DJFTPD_DEMO_DIR>/events.log``; the
end-to-end tests read it. Connect yours the same way, from your app's ``ready()``::

    from django.dispatch import receiver
    from djftpd.signals import ftp_file_received

    @receiver(ftp_file_received)
    def on_upload(sender, *, user, path, bytes, **kwargs):
        ...
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from django.conf import settings
from django.dispatch import Signal

from djftpd.signals import EVENT_SIGNALS

#: Signal -> event type, to name the line.
TYPES: dict[Signal, str] = {signal: type_ for type_, signal in EVENT_SIGNALS.items()}


def log_event(sender: Any, *, signal: Signal, **kwargs: Any) -> None:
    """Append the event as one JSON line to events.log."""
    line = {
        "type": TYPES[signal],
        "event_id": kwargs["event_id"],
        "username": kwargs["username"],
        "user_id": kwargs["user"].pk if kwargs["user"] is not None else None,
        "path": kwargs["path"],
        "to_path": kwargs["to_path"],
        "bytes": kwargs["bytes"],
        "time": kwargs["time"].isoformat(),
        "protocol": kwargs.get("protocol"),
    }
    os.write(log_fd(), (json.dumps(line) + "\n").encode())


@functools.cache
def log_fd() -> int:
    """events.log, opened once per process for appending (O_APPEND): one write(2) per
    event, each line whole, instead of an open, a write and a close."""
    return os.open(settings.DEMO_DIR / "events.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def connect() -> None:
    """Connect :func:`log_event` to every djftpd signal."""
    for signal in EVENT_SIGNALS.values():
        signal.connect(log_event, dispatch_uid="demoapp.log_event")
