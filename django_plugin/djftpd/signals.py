"""Django signals for what happens on the FTP server, one per event type (DESIGN.md section 2).

The sidecar reports every FTP action to ``POST events/``; for each event seen for the first
time, djftpd sends the matching signal once, after the batch is committed::

    from django.dispatch import receiver
    from djftpd.signals import ftp_file_received

    @receiver(ftp_file_received)
    def on_upload(sender, *, user, path, bytes, **kwargs):
        if user is not None:
            Upload.objects.create(owner=user, path=path, size=bytes)

Every signal is sent with ``sender=Sidecar`` (the class :class:`Sidecar` below, as Django's own
signals send a class) and these keyword arguments (accept ``**kwargs`` too: later releases may
add some):

- ``event_id`` (str): the event's unique id; a redelivered event fires no signal twice.
- ``username`` (str | None): the FTP user; None before login (``connect``), the name typed by
  the client for ``login_failed``.
- ``user`` (User | None): the user whose ``USERNAME_FIELD`` equals ``username``, or None.
- ``path`` (str | None), ``to_path`` (str | None): paths as the FTP user sees them (``/`` is
  the home); ``to_path`` only for ``file_renamed``.
- ``bytes`` (int | None): bytes transferred, for the four transfer signals.
- ``duration_ms`` (int | None): transfer time, or session length for ``ftp_disconnect``.
- ``client_ip`` (str): the FTP client's address.
- ``session`` (str): the sidecar's id of the FTP session; shared by its events.
- ``time`` (datetime): when it happened, timezone-aware.

A receiver that raises is logged (logger ``"djftpd"``, ERROR) and skipped: the other
receivers and the other events of the batch still run, and the sidecar gets its 200.
"""

from __future__ import annotations

from django.dispatch import Signal

#: A client opened a control connection (``username`` is None).
ftp_connect = Signal()
#: The control connection closed; ``duration_ms`` is the session's length.
ftp_disconnect = Signal()
#: A user logged in (cached or not).
ftp_login = Signal()
#: A login was refused; ``username`` is what the client sent and ``user`` may be None.
ftp_login_failed = Signal()
#: A logged-in user ended the session (QUIT or disconnect).
ftp_logout = Signal()
#: A download (RETR) completed: ``path``, ``bytes``, ``duration_ms``.
ftp_file_sent = Signal()
#: An upload (STOR, STOU, APPE) completed: ``path``, ``bytes``, ``duration_ms``.
ftp_file_received = Signal()
#: A download was aborted or failed: ``path``, ``bytes`` sent so far, ``duration_ms``.
ftp_incomplete_file_sent = Signal()
#: An upload was aborted or failed: ``path``, ``bytes`` received so far, ``duration_ms``.
ftp_incomplete_file_received = Signal()
#: A file was deleted (DELE): ``path``.
ftp_file_deleted = Signal()
#: A file or directory was renamed (RNFR/RNTO): ``path`` -> ``to_path``.
ftp_file_renamed = Signal()
#: A directory was created (MKD): ``path``.
ftp_directory_created = Signal()
#: A directory was removed (RMD): ``path``.
ftp_directory_deleted = Signal()

#: Event type (the ``type`` field on the wire) -> the signal it sends.
EVENT_SIGNALS: dict[str, Signal] = {
    "connect": ftp_connect,
    "disconnect": ftp_disconnect,
    "login": ftp_login,
    "login_failed": ftp_login_failed,
    "logout": ftp_logout,
    "file_sent": ftp_file_sent,
    "file_received": ftp_file_received,
    "incomplete_file_sent": ftp_incomplete_file_sent,
    "incomplete_file_received": ftp_incomplete_file_received,
    "file_deleted": ftp_file_deleted,
    "file_renamed": ftp_file_renamed,
    "directory_created": ftp_directory_created,
    "directory_deleted": ftp_directory_deleted,
}


class Sidecar:
    """The sender of every djftpd signal: the FTP sidecar that reported the event.

    Never instantiated; a receiver may filter on it::

        ftp_login.connect(on_login, sender=Sidecar)

    (The 1.0.0.dev snapshots sent the string ``"djftpd"``; a receiver connected with that
    sender no longer matches.)
    """


#: The sender of every djftpd signal.
SENDER = Sidecar
