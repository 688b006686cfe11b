"""The admin's "Live sessions" page: who is connected to the sidecars right now, what they are
transferring, and buttons to disconnect a session, every session of a user, or to disable the
user's FTP account and disconnect them.

It is registered on :class:`djftpd.models.LiveSession` (no table), so it appears in the admin
index under djftpd. Seeing it needs ``djftpd.view_session``; the buttons need
``djftpd.close_session`` (and disabling an account ``djftpd.change_ftpaccount`` too). The
page asks every ``DJFTPD["SIDECAR_URLS"]`` in parallel with a short timeout; a sidecar that
does not answer is listed as such. It reloads itself every ``REFRESH_SECONDS`` (a
``<meta refresh>``; ``?refresh=0`` turns it off).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from djftpd import sidecar_client
from djftpd.models import FTPAccount, LiveSession

#: Seconds between reloads of the page.
REFRESH_SECONDS = 10
#: Longest session id or username taken from a form.
MAX_TARGET = 255


def sessions_of_user(username: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """The live sessions of ``username`` on every sidecar, and the sidecars that did not answer."""
    results = sidecar_client.gather_sessions()
    sessions = [
        dict(s, sidecar=r.url) for r in results for s in r.sessions if s.get("username") == username
    ]
    return sessions, [r for r in results if not r.ok]


class LiveSessionAdmin(admin.ModelAdmin):
    """Not a model list: the page of live sessions and its POST-only actions."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("djftpd.view_session"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.live_view), name="djftpd_livesession_changelist"),
            path("close/", wrap(self.close_view), name="djftpd_livesession_close"),
        ]

    def live_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        results = sidecar_client.gather_sessions()
        rows = [dict(s, sidecar=r.url) for r in results for s in r.sessions]
        rows.sort(key=lambda s: (s.get("username") or "\uffff", str(s.get("connected_at"))))
        refresh = REFRESH_SECONDS if request.GET.get("refresh") != "0" else 0
        context = {
            **self.admin_site.each_context(request),
            "title": _("Live FTP sessions"),
            "opts": self.model._meta,
            "results": results,
            "sessions": rows,
            "down": [r for r in results if not r.ok],
            "can_close": request.user.has_perm("djftpd.close_session"),
            "can_disable": request.user.has_perm("djftpd.close_session")
            and request.user.has_perm("djftpd.change_ftpaccount"),
            "refresh": refresh,
            "no_sidecars": not results,
        }
        return TemplateResponse(request, "admin/djftpd/live_sessions.html", context)

    def close_view(self, request: HttpRequest) -> HttpResponse:
        """POST ``action=session:<id>``, ``user:<username>`` or ``disable:<username>``."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("djftpd.close_session"):
            raise PermissionDenied
        kind, _sep, target = request.POST.get("action", "").partition(":")
        if not target or len(target) > MAX_TARGET or kind not in ("session", "user", "disable"):
            self.message_user(request, _("Unknown action."), messages.ERROR)
        elif kind == "session":
            self._report(request, sidecar_client.close_sessions(session=target), target)
        elif kind == "user":
            self._report(request, sidecar_client.close_sessions(username=target), target)
        else:
            self._disable(request, target)
        return HttpResponseRedirect(self._next(request))

    def _next(self, request: HttpRequest) -> str:
        url = request.POST.get("next") or request.GET.get("next") or ""
        if url and url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return url
        return reverse(f"{self.admin_site.name}:djftpd_livesession_changelist")

    def _report(self, request: HttpRequest, outcome: dict[str, int | None], target: str) -> None:
        closed = sum(n for n in outcome.values() if n)
        self.message_user(
            request,
            ngettext(
                "%(n)d session of %(target)s closed.",
                "%(n)d sessions of %(target)s closed.",
                closed,
            )
            % {"n": closed, "target": target},
            messages.SUCCESS if closed else messages.WARNING,
        )
        silent = [url for url, n in outcome.items() if n is None]
        if silent:
            self.message_user(
                request,
                _("These sidecars did not answer: %s") % ", ".join(silent),
                messages.ERROR,
            )

    def _disable(self, request: HttpRequest, username: str) -> None:
        """FTPAccount.enabled=False (its save purges the sidecars' login cache), then, once
        that is committed, the user's sessions are closed: no cached login can slip back in."""
        if not request.user.has_perm("djftpd.change_ftpaccount"):
            raise PermissionDenied
        User = get_user_model()
        user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            self.message_user(request, _("No user %s.") % username, messages.ERROR)
            return
        with transaction.atomic():
            FTPAccount.objects.update_or_create(user=user, defaults={"enabled": False})
            transaction.on_commit(
                lambda: self._report(
                    request, sidecar_client.close_sessions(username=username), username
                )
            )
        self.message_user(request, _("FTP account of %s disabled.") % username, messages.SUCCESS)


admin.site.register(LiveSession, LiveSessionAdmin)
