"""Admin pages of djftpd: the FTP activity log, read-only.

Staff with the ``djftpd.view_ftpevent`` permission can browse it (filters by type, date and
user; search by username and path). Nobody can add or edit an event; superusers may delete
some, though ``manage.py djftpd_prune_events`` is the usual way to trim the log.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from djftpd.models import FTPEvent


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
    )
    list_filter = ("type", ("user", admin.RelatedOnlyFieldListFilter))
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
        return bool(request.user.is_superuser)
