"""Admin of SSH keys (SFTP logins): their own page, inline on the user's page, and a summary
with fingerprints on each FTP account's page. Imported by :mod:`djftpd.admin`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from djftpd.models import SSHKey

User = get_user_model()

READONLY = ("type", "bits", "fingerprint", "created", "last_used")


@admin.register(SSHKey)
class SSHKeyAdmin(admin.ModelAdmin):
    """Every user's keys; the key is checked on save (type and size)."""

    list_display = ("user", "label", "type", "bits", "fingerprint", "enabled", "last_used")
    list_filter = ("enabled", "type")
    search_fields = (f"user__{User.USERNAME_FIELD}", "label", "fingerprint")
    raw_id_fields = ("user",)
    list_select_related = ("user",)
    readonly_fields = READONLY
    fields = ("user", "label", "key", "enabled", *READONLY)


class SSHKeyInline(admin.TabularInline):
    """The user's SSH keys on the user's admin page."""

    model = SSHKey
    extra = 0
    fields = ("label", "key", "enabled", *READONLY)
    readonly_fields = READONLY


@admin.display(description=_("SSH keys"))
def ssh_keys_summary(account: Any) -> str:
    """The account's user's keys with their fingerprints, linked to the key pages."""
    if account is None or account.user_id is None:
        return "-"
    keys = SSHKey.objects.filter(user_id=account.user_id).order_by("created")
    if not keys:
        return format_html(
            '<a href="{}?user__id__exact={}">{}</a>',
            reverse("admin:djftpd_sshkey_changelist"),
            account.user_id,
            _("none"),
        )
    return format_html_join(
        mark_safe("<br>"),
        '<a href="{}">{} {}</a> {}',
        (
            (
                reverse("admin:djftpd_sshkey_change", args=[key.pk]),
                key.fingerprint,
                key.label,
                "" if key.enabled else _("(disabled)"),
            )
            for key in keys
        ),
    )
