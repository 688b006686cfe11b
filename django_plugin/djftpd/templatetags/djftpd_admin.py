"""Template tags of djftpd's admin pages: the FTP dashboard above the event list, and the
"FTP" section of a user's admin page (live sessions and the last events)::

    {% load djftpd_admin %}
    {% ftp_dashboard %}
    {% ftp_user_panel original %}

Projects with their own user admin template can add ``{% ftp_user_panel original %}`` to it.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.auth import get_user_model

from djftpd.dashboard import dashboard
from djftpd.models import FTPEvent

register = template.Library()

#: Events listed in a user's FTP section.
USER_EVENTS = 20


@register.inclusion_tag("admin/djftpd/dashboard.html")
def ftp_dashboard() -> dict[str, Any]:
    return dashboard()


@register.inclusion_tag("admin/djftpd/user_ftp_panel.html", takes_context=True)
def ftp_user_panel(context: template.Context, user: Any) -> dict[str, Any]:
    """The user's live sessions (with ``djftpd.view_session``) and last events (with
    ``djftpd.view_ftpevent``), each asked only when the viewer may see it."""
    from djftpd.admin_live import sessions_of_user

    request = context.get("request")
    viewer = getattr(request, "user", None)
    out: dict[str, Any] = {
        "request": request,
        "subject": user,
        "csrf_token": context.get("csrf_token"),
    }
    if user is None or getattr(user, "pk", None) is None or viewer is None:
        return out
    username = getattr(user, get_user_model().USERNAME_FIELD)
    out["username"] = username
    if viewer.has_perm("djftpd.view_session"):
        out["sessions"], out["errors"] = sessions_of_user(username)
        out["can_close"] = viewer.has_perm("djftpd.close_session")
    if viewer.has_perm("djftpd.view_ftpevent"):
        out["events"] = list(FTPEvent.objects.filter(username=username)[:USER_EVENTS])
    return out
