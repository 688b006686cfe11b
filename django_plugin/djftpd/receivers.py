"""Tell the running sidecars to forget cached logins when a user changes (DESIGN.md section 2).

The sidecar caches each successful login for a while (``ttl``); without a purge, a changed
password or a deactivated account would keep working until the entry expires. With::

    DJFTPD = {..., "SIDECAR_URLS": ["http://127.0.0.1:9121/"]}   # each sidecar's ops listener

(unset, the one sidecar ``startftpserver`` starts on this host: see :func:`sidecar_urls`)

djftpd POSTs, signed like every djftpd request, ``{"username": "alice"}`` to
``<url>cache/purge`` once the transaction that changed alice commits, when:

- her password, ``is_active`` or username changes (a ``last_login`` update does not purge),
- her groups or user permissions change, or her ``FTPAccount`` is saved or deleted,
- she is deleted;

and ``{"all": true}`` when a group's permissions change or a group's members change from the
group's side. Each call has a short timeout; a failure is logged (logger ``"djftpd"``) and
never raised into the code that saved the user.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ObjectDoesNotExist
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from djftpd import sidecar_client
from djftpd.conf import secret_bytes
from djftpd.sidecar_client import sidecar_urls

logger = logging.getLogger("djftpd")

#: The user fields whose change makes a cached login wrong (plus USERNAME_FIELD).
WATCHED_FIELDS = ("password", "is_active")


def send_purge(payload: dict[str, Any]) -> None:
    """POST ``payload`` now, signed, to every sidecar; log failures, never raise."""
    urls = sidecar_urls()
    if not urls:
        return
    try:
        secret = secret_bytes()
    except ImproperlyConfigured:
        logger.error('djftpd: cannot purge the sidecar cache: DJFTPD["SECRET"] is not set')
        return
    for base in urls:
        sidecar_client.purge(base, payload, secret=secret)


def schedule_purge(payload: dict[str, Any]) -> None:
    """Send ``payload`` once the current transaction commits (now, outside a transaction)."""
    if sidecar_urls():
        transaction.on_commit(partial(send_purge, payload))


def purge_user(username: str) -> None:
    """Purge one user's cached logins after commit."""
    schedule_purge({"username": username})


def purge_all() -> None:
    """Purge every cached login after commit."""
    schedule_purge({"all": True})


# Receivers.


def _is_column(model: Any, name: str) -> bool:
    try:
        return bool(model._meta.get_field(name).concrete)
    except FieldDoesNotExist:
        return False


def remember_login_fields(sender: Any, instance: Any, update_fields: Any = None, **kw: Any) -> None:
    """pre_save of the user model: note the usernames to purge if a watched field changes."""
    if not sidecar_urls():  # nowhere to send a purge: spare the query
        return
    username_field = sender.USERNAME_FIELD
    watched = {*WATCHED_FIELDS, username_field}
    if instance.pk is None or (update_fields is not None and not watched & set(update_fields)):
        return
    # Only columns: a custom user model may have no is_active field (AbstractBaseUser's
    # is_active is a constant True then).
    fields = [name for name in watched if _is_column(sender, name)]
    old = sender._default_manager.filter(pk=instance.pk).values(*fields).first()
    if old is None:
        return
    if any(old[name] != getattr(instance, name) for name in fields):
        instance._djftpd_purge = {old[username_field], instance.get_username()}


def purge_changed_user(sender: Any, instance: Any, created: bool = False, **kw: Any) -> None:
    """post_save of the user model: purge what :func:`remember_login_fields` noted."""
    for username in sorted(instance.__dict__.pop("_djftpd_purge", ())):
        purge_user(username)


def purge_deleted_user(sender: Any, instance: Any, **kw: Any) -> None:
    """post_delete of the user model."""
    purge_user(instance.get_username())


def purge_account_user(sender: Any, instance: Any, **kw: Any) -> None:
    """post_save and post_delete of FTPAccount."""
    if not sidecar_urls():  # instance.user may cost a query
        return
    try:
        user = instance.user
    except ObjectDoesNotExist:
        return
    purge_user(user.get_username())


def purge_membership(sender: Any, instance: Any, action: str, reverse: bool, **kw: Any) -> None:
    """m2m_changed of the user's groups and user_permissions: the user, or everyone when
    changed from the group's or permission's side."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if reverse:
        purge_all()
    else:
        purge_user(instance.get_username())


def purge_group_permissions(sender: Any, action: str, **kw: Any) -> None:
    """m2m_changed of Group.permissions: every member may be affected."""
    if action in ("post_add", "post_remove", "post_clear"):
        purge_all()


def connect() -> None:
    """Connect the receivers (idempotent); called from ``DjftpdConfig.ready()``."""
    from djftpd.models import FTPAccount

    user_model = settings.AUTH_USER_MODEL
    pre_save.connect(remember_login_fields, sender=user_model, dispatch_uid="djftpd.pre_save")
    post_save.connect(purge_changed_user, sender=user_model, dispatch_uid="djftpd.post_save")
    post_delete.connect(purge_deleted_user, sender=user_model, dispatch_uid="djftpd.delete")
    post_save.connect(purge_account_user, sender=FTPAccount, dispatch_uid="djftpd.account.save")
    post_delete.connect(purge_account_user, sender=FTPAccount, dispatch_uid="djftpd.account.del")
    User = get_user_model()
    for name in ("groups", "user_permissions"):
        field = getattr(User, name, None)
        if field is not None and hasattr(field, "through"):
            m2m_changed.connect(
                purge_membership, sender=field.through, dispatch_uid=f"djftpd.m2m.{name}"
            )
    if "django.contrib.auth" in settings.INSTALLED_APPS:
        from django.contrib.auth.models import Group

        m2m_changed.connect(
            purge_group_permissions,
            sender=Group.permissions.through,
            dispatch_uid="djftpd.group_permissions",
        )
