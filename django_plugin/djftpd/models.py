"""Models of djftpd: per-user FTP accounts, the FTP activity log, and the receipts that make
event delivery idempotent.

An :class:`FTPAccount` is optional: a user without one gets the site-wide policy (DESIGN.md
section 5). With one, its non-blank fields win::

    FTPAccount.objects.create(user=alice, perms="elr", quota_bytes=10 * 2**30)
    FTPAccount.objects.filter(user=mallory).update(enabled=False)   # refused at login

Every event the sidecar delivers leaves a small :class:`FTPEventReceipt` (its id), so an event
delivered twice fires its signal once. With ``DJFTPD["ACTIVITY_LOG"]`` on (the default), it
is also stored as an :class:`FTPEvent`, browsable in the admin (with
``DJFTPD["COMPACT_ACTIVITY_LOG"]``, connect and disconnect are not, and a row is its event's
receipt)::

    from djftpd.models import FTPEvent
    FTPEvent.objects.filter(user=alice, type=FTPEvent.Type.FILE_RECEIVED)[:10]

Both tables grow with use; prune them with ``manage.py djftpd_prune_events --older-than 90d``.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

#: Longest event id accepted (the sidecar's ids are 32 hex digits; it allows up to 128 bytes).
EVENT_ID_MAX_LENGTH = 128
#: Longest session id and username kept; longer values (a junk login name) are cut.
SESSION_MAX_LENGTH = 128
USERNAME_MAX_LENGTH = 255


def validate_perms(value: str) -> None:
    """Only permission letters known to djftpd (pyftpdlib's ``elradfmwMT``)."""
    from djftpd.conf import PERM_LETTERS

    unknown = "".join(sorted(set(value) - set(PERM_LETTERS)))
    if unknown:
        raise ValidationError(
            _("Unknown permission letters %(letters)s."),
            code="invalid_perms",
            params={"letters": repr(unknown)},
        )


def validate_absolute(value: str) -> None:
    """An absolute path."""
    if not os.path.isabs(value):
        raise ValidationError(_("Must be an absolute path."), code="relative_path")


class FTPAccount(models.Model):
    """FTP settings of one user; each non-blank field overrides the site-wide policy.

    ``enabled=False`` refuses every login of the user (the same 401 as a wrong password).
    The ``djftpd.use_ftp`` permission, defined here, is what ``DJFTPD["REQUIRE_PERMISSION"]``
    usually names.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="ftp_account",
    )
    enabled = models.BooleanField(
        _("enabled"), default=True, help_text=_("Unticked: every FTP login is refused.")
    )
    home_dir = models.CharField(
        _("home directory"),
        max_length=4096,
        blank=True,
        validators=[validate_absolute],
        help_text=_('Absolute path inside DJFTPD["HOME_ROOT"]; blank: the site default.'),
    )
    perms = models.CharField(
        _("permissions"),
        max_length=20,
        blank=True,
        validators=[validate_perms],
        help_text=_("Letters among elradfmwMT (pyftpdlib's); blank: the site default."),
    )
    quota_bytes = models.PositiveBigIntegerField(
        _("quota (bytes)"), null=True, blank=True, help_text=_("Blank: no quota.")
    )
    max_sessions = models.PositiveIntegerField(
        _("max sessions"),
        null=True,
        blank=True,
        help_text=_("Simultaneous FTP sessions allowed; blank: no per-user limit."),
    )
    welcome = models.TextField(
        _("welcome message"), blank=True, help_text=_("Blank: the site default.")
    )
    created = models.DateTimeField(_("created"), auto_now_add=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("FTP account")
        verbose_name_plural = _("FTP accounts")
        permissions = [("use_ftp", _("Can log in over FTP"))]

    def __str__(self) -> str:
        return str(self.user)

    def clean(self) -> None:
        """Refuse a home directory outside ``DJFTPD["HOME_ROOT"]``: the sidecar would."""
        from djftpd.conf import app_settings

        root = app_settings.HOME_ROOT
        if self.home_dir and root and os.path.isabs(self.home_dir):
            home, root = os.path.normpath(self.home_dir), os.path.normpath(root)
            if os.path.commonpath([home, root]) != root:
                error = ValidationError(
                    _('Must be inside %(root)s (DJFTPD["HOME_ROOT"]).'),
                    code="outside_home_root",
                    params={"root": root},
                )
                raise ValidationError({"home_dir": error})


class FTPEvent(models.Model):
    """One FTP action reported by the sidecar (DESIGN.md section 2), kept for the admin.

    ``username``, ``path`` and ``to_path`` are ``""`` where the event has none (null on the
    wire); ``user`` is the Django user named ``username`` when the event arrived.
    """

    class Type(models.TextChoices):
        CONNECT = "connect", _("connect")
        DISCONNECT = "disconnect", _("disconnect")
        LOGIN = "login", _("login")
        LOGIN_FAILED = "login_failed", _("login failed")
        LOGOUT = "logout", _("logout")
        FILE_SENT = "file_sent", _("file sent")
        FILE_RECEIVED = "file_received", _("file received")
        INCOMPLETE_FILE_SENT = "incomplete_file_sent", _("incomplete file sent")
        INCOMPLETE_FILE_RECEIVED = "incomplete_file_received", _("incomplete file received")
        FILE_DELETED = "file_deleted", _("file deleted")
        FILE_RENAMED = "file_renamed", _("file renamed")
        DIRECTORY_CREATED = "directory_created", _("directory created")
        DIRECTORY_DELETED = "directory_deleted", _("directory deleted")

    id = models.CharField(_("event id"), max_length=EVENT_ID_MAX_LENGTH, primary_key=True)
    type = models.CharField(_("type"), max_length=32, choices=Type.choices)
    time = models.DateTimeField(_("time"))
    session = models.CharField(_("session"), max_length=SESSION_MAX_LENGTH)
    username = models.CharField(_("username"), max_length=USERNAME_MAX_LENGTH, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ftp_events",
    )
    client_ip = models.GenericIPAddressField(_("client IP"))
    path = models.TextField(_("path"), blank=True)
    to_path = models.TextField(_("new path"), blank=True)
    bytes = models.BigIntegerField(_("bytes"), null=True, blank=True)
    duration_ms = models.BigIntegerField(_("duration (ms)"), null=True, blank=True)
    # ftp, ftps or sftp; blank for events of sidecars that did not say.
    protocol = models.CharField(_("protocol"), max_length=8, blank=True, default="")

    class Meta:
        verbose_name = _("FTP event")
        verbose_name_plural = _("FTP events")
        ordering = ["-time"]
        indexes = [
            models.Index(fields=["time"], name="djftpd_event_time"),
            models.Index(fields=["username", "time"], name="djftpd_event_username_time"),
            models.Index(fields=["type", "time"], name="djftpd_event_type_time"),
        ]

    def __str__(self) -> str:
        who = self.username or self.client_ip
        what = f"{self.path} -> {self.to_path}" if self.to_path else self.path
        return f"{self.time:%Y-%m-%d %H:%M:%S} {who} {self.type} {what}".rstrip()


class FTPEventReceipt(models.Model):
    """The id of an event already applied: a redelivered event sends no signal twice."""

    id = models.CharField(_("event id"), max_length=EVENT_ID_MAX_LENGTH, primary_key=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("FTP event receipt")
        verbose_name_plural = _("FTP event receipts")

    def __str__(self) -> str:
        return self.id


class LiveSession(models.Model):
    """Not a table: the admin's "Live sessions" page (``djftpd.admin_live``), which asks the
    sidecars, hangs on it, and its permissions are defined here: ``djftpd.view_session`` to
    see who is connected, ``djftpd.close_session`` to disconnect them."""

    id = models.CharField(_("session"), max_length=SESSION_MAX_LENGTH, primary_key=True)

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_session", _("Can see live FTP sessions")),
            ("close_session", _("Can disconnect live FTP sessions")),
        ]
        verbose_name = _("live session")
        verbose_name_plural = _("live sessions")

    def __str__(self) -> str:
        return self.id


def validate_public_key(value: str) -> None:
    """An OpenSSH public key djftpd accepts (:mod:`djftpd.sshkeys`)."""
    from djftpd.sshkeys import InvalidKey, parse_public_key

    try:
        parse_public_key(value)
    except InvalidKey as exc:
        raise ValidationError(str(exc), code="invalid_public_key") from None


class SSHKey(models.Model):
    """An SSH public key a user may log in with over SFTP (the same grant as a password).

    The key is parsed and checked on every save (type, size, encoding); ``type``, ``bits`` and
    ``fingerprint`` are derived from it. ``enabled=False`` keeps the key but refuses it.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="ssh_keys",
    )
    label = models.CharField(_("label"), max_length=100, blank=True)
    key = models.TextField(
        _("public key"),
        validators=[validate_public_key],
        help_text=_(
            "One OpenSSH public key line (ssh-ed25519, ecdsa-sha2-nistp256/384/521, "
            "or ssh-rsa of 2048 bits or more)."
        ),
    )
    type = models.CharField(_("type"), max_length=32, editable=False)
    bits = models.PositiveIntegerField(_("bits"), editable=False, default=0)
    fingerprint = models.CharField(_("fingerprint"), max_length=64, editable=False)
    enabled = models.BooleanField(
        _("enabled"), default=True, help_text=_("Unticked: logins with this key are refused.")
    )
    created = models.DateTimeField(_("created"), auto_now_add=True)
    last_used = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("SSH key")
        verbose_name_plural = _("SSH keys")
        ordering = ["user", "created"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "fingerprint"], name="djftpd_sshkey_user_fingerprint"
            )
        ]

    def __str__(self) -> str:
        return f"{self.label or self.type} {self.fingerprint}".strip()

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Parse the key (ValidationError if it is not acceptable) and derive its fields."""
        from djftpd.sshkeys import InvalidKey, parse_public_key

        try:
            parsed = parse_public_key(self.key)
        except InvalidKey as exc:
            raise ValidationError({"key": str(exc)}, code="invalid_public_key") from None
        self.key = f"{parsed.line} {parsed.comment}".strip()
        self.type, self.bits, self.fingerprint = parsed.type, parsed.bits, parsed.fingerprint
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "key" in update_fields:
            kwargs["update_fields"] = {*update_fields, "type", "bits", "fingerprint"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """A key the user already has is a form error, not a database error."""
        from djftpd.sshkeys import InvalidKey, parse_public_key

        try:
            fingerprint = parse_public_key(self.key).fingerprint
        except InvalidKey:
            return  # the key field's validator reports it
        same = SSHKey.objects.filter(user_id=self.user_id, fingerprint=fingerprint)
        if self.user_id is not None and same.exclude(pk=self.pk).exists():
            raise ValidationError(
                {"key": _("This user already has this key.")}, code="duplicate_key"
            )
