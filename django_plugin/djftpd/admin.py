"""Admin pages of djftpd: FTP accounts, and the FTP activity log, read-only.

FTP accounts are edited on their own page and, when the project uses Django's default user
admin (``django.contrib.auth.admin.UserAdmin``), inline on each user's page too, unless
``DJFTPD["USER_ADMIN_INLINE"]`` is False.

Staff with the ``djftpd.view_ftpevent`` permission can browse it (filters by type, date and
user; search by username and path). Nobody can add or edit an event; superusers and staff
with ``djftpd.delete_ftpevent`` may delete some, though ``manage.py djftpd_prune_events`` is
the usual way to trim the log.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from djftpd.conf import app_settings
from djftpd.models import FTPAccount, FTPEvent
from djftpd.sshkeys_admin import SSHKeyInline, ssh_keys_summary

User = get_user_model()


@admin.register(FTPAccount)
class FTPAccountAdmin(admin.ModelAdmin):
    """One row per user who has FTP settings of their own."""

    list_display = (
        "user",
        "enabled",
        "perms",
        "home_dir",
        "quota_bytes",
        "max_sessions",
        "updated",
    )
    list_filter = ("enabled", "updated")
    search_fields = (f"user__{User.USERNAME_FIELD}", "home_dir")
    raw_id_fields = ("user",)
    list_select_related = ("user",)
    readonly_fields = ("created", "updated", "ssh_keys")

    ssh_keys = staticmethod(ssh_keys_summary)


class FTPAccountInline(admin.StackedInline):
    """The user's FTP account on the user's admin page."""

    model = FTPAccount
    can_delete = True
    extra = 0
    max_num = 1
    readonly_fields = ("created", "updated")


def add_inline_to_user_admin(site: admin.AdminSite = admin.site) -> bool:
    """Show :class:`FTPAccountInline` on the user pages when ``site`` uses Django's own
    ``UserAdmin``, unchanged, and ``DJFTPD["USER_ADMIN_INLINE"]`` is on; a project's custom
    user admin is left alone. True if added."""
    if not app_settings.USER_ADMIN_INLINE or type(site._registry.get(User)) is not UserAdmin:
        return False

    class DjftpdUserAdmin(UserAdmin):
        inlines = (*UserAdmin.inlines, FTPAccountInline, SSHKeyInline)

    site.unregister(User)
    site.register(User, DjftpdUserAdmin)
    return True


add_inline_to_user_admin()


@admin.register(FTPEvent)
class FTPEventAdmin(admin.ModelAdmin):
    """What the sidecar reported, as it reported it: never added or changed by hand."""

    list_display = (
        "time",
        "type",
        "username",
        "client_ip",
        "path",
        "to_path",
        "bytes",
        "duration_ms",
        "protocol",
    )
    list_filter = ("type", "protocol", ("user", admin.RelatedOnlyFieldListFilter))
    date_hierarchy = "time"
    search_fields = ("username", "path", "to_path")
    ordering = ("-time",)
    show_full_result_count = False
    list_select_related = ("user",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """``djftpd.delete_ftpevent``, as for any model (superusers have every permission)."""
        return super().has_delete_permission(request, obj)


# The live sessions page (admin_live.py): registered with the admin site on import.
from djftpd import admin_live  # noqa: E402, F401
