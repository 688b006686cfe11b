"""The FTP activity dashboard above the admin's FTP event list: logins, failed logins and bytes
per day over the last 30 days, and the users who moved the most bytes. One query per chart;
the charts are inline SVG drawn by ``admin/djftpd/dashboard.html`` from the geometry computed
here (no JavaScript)::

    from djftpd.dashboard import dashboard
    context = dashboard()          # {"days": 30, "charts": [...]} for the template
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from djftpd.models import FTPEvent

DAYS = 30
TOP_USERS = 10
#: Drawing area of a daily chart, in SVG user units (it scales to the page width).
WIDTH, HEIGHT, TOP_PAD, AXIS = 600, 140, 10, 16

UPLOADS = (FTPEvent.Type.FILE_RECEIVED, FTPEvent.Type.INCOMPLETE_FILE_RECEIVED)
DOWNLOADS = (FTPEvent.Type.FILE_SENT, FTPEvent.Type.INCOMPLETE_FILE_SENT)


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str  # series class: the colour comes from the stylesheet in the template
    title: str
    text: str = ""  # printed beside the bar (top users)


@dataclass
class Chart:
    """A chart as the template draws it: bars, series legend, day labels."""

    id: str
    title: Any
    bars: list[Bar] = field(default_factory=list)
    legend: list[tuple[str, Any]] = field(default_factory=list)  # (css class, label)
    labels: list[tuple[float, str]] = field(default_factory=list)  # (x, text)
    maximum: str = ""
    width: int = WIDTH
    height: int = HEIGHT + TOP_PAD + AXIS
    empty: bool = True


def _since(now: datetime | None = None) -> tuple[date, datetime]:
    """The first day shown and the moment it starts, in the current time zone."""
    now = timezone.now() if now is None else now
    if timezone.is_aware(now):
        now = timezone.localtime(now)
    first = now.date() - timedelta(days=DAYS - 1)
    start = datetime.combine(first, datetime.min.time())
    return first, timezone.make_aware(start) if settings.USE_TZ else start


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def daily_chart(
    chart_id: str,
    title: Any,
    first: date,
    rows: dict[date, dict[str, int]],
    series: list[tuple[str, str, Any]],
    fmt: Any = str,
) -> Chart:
    """Grouped bars, one group per day from ``first``: ``series`` is (key, css, label)."""
    chart = Chart(id=chart_id, title=title, legend=[(css, label) for _, css, label in series])
    top = max((row.get(key) or 0 for row in rows.values() for key, _, _ in series), default=0)
    chart.empty = top == 0
    chart.maximum = fmt(top)
    slot = WIDTH / DAYS
    bar_w = (slot - 2) / len(series)
    for i in range(DAYS):
        day = first + timedelta(days=i)
        row = rows.get(day, {})
        for j, (key, css, label) in enumerate(series):
            value = row.get(key) or 0
            h = HEIGHT * value / top if top else 0
            chart.bars.append(
                Bar(
                    x=round(i * slot + 1 + j * bar_w, 2),
                    y=round(TOP_PAD + HEIGHT - h, 2),
                    width=round(bar_w, 2),
                    height=round(h, 2),
                    css=css,
                    title=f"{day:%Y-%m-%d} {label}: {fmt(value)}",
                )
            )
        if i % 5 == 0 or i == DAYS - 1:
            chart.labels.append((round(i * slot + slot / 2, 2), f"{day:%m-%d}"))
    return chart


def _by_day(queryset: Any) -> dict[date, dict[str, int]]:
    rows: dict[date, dict[str, int]] = {}
    for row in queryset:
        day = row.pop("day")
        if isinstance(day, datetime):
            day = day.date()
        rows[day] = row
    return rows


def logins_chart(first: date, since: datetime) -> Chart:
    """Logins and failed logins per day: one query."""
    qs = (
        FTPEvent.objects.filter(
            time__gte=since, type__in=(FTPEvent.Type.LOGIN, FTPEvent.Type.LOGIN_FAILED)
        )
        .annotate(day=TruncDate("time"))
        .values("day")
        .annotate(
            ok=Count("pk", filter=Q(type=FTPEvent.Type.LOGIN)),
            failed=Count("pk", filter=Q(type=FTPEvent.Type.LOGIN_FAILED)),
        )
        .order_by("day")
    )
    series = [("ok", "ok", _("logins")), ("failed", "failed", _("failed logins"))]
    return daily_chart("logins", _("Logins per day"), first, _by_day(qs), series)


def bytes_chart(first: date, since: datetime) -> Chart:
    """Bytes uploaded and downloaded per day (complete or not): one query."""
    qs = (
        FTPEvent.objects.filter(time__gte=since, type__in=(*UPLOADS, *DOWNLOADS))
        .annotate(day=TruncDate("time"))
        .values("day")
        .annotate(
            up=Coalesce(Sum("bytes", filter=Q(type__in=UPLOADS)), 0),
            down=Coalesce(Sum("bytes", filter=Q(type__in=DOWNLOADS)), 0),
        )
        .order_by("day")
    )
    series = [("up", "up", _("uploaded")), ("down", "down", _("downloaded"))]
    return daily_chart("bytes", _("Bytes per day"), first, _by_day(qs), series, _human_bytes)


def top_users_chart(since: datetime) -> Chart:
    """Horizontal bars: the users who moved the most bytes (both directions): one query."""
    rows = list(
        FTPEvent.objects.filter(time__gte=since, type__in=(*UPLOADS, *DOWNLOADS))
        .exclude(username="")
        .values("username")
        .annotate(total=Sum("bytes"))
        .filter(total__gt=0)
        .order_by("-total", "username")[:TOP_USERS]
    )
    row_h, label_w = 18, 150
    chart = Chart(id="top-users", title=_("Top users by bytes"), height=max(len(rows), 1) * row_h)
    chart.empty = not rows
    top = rows[0]["total"] if rows else 0
    chart.maximum = _human_bytes(top)
    for i, row in enumerate(rows):
        w = (WIDTH - label_w - 80) * row["total"] / top
        chart.bars.append(
            Bar(
                x=label_w,
                y=i * row_h + 2,
                width=round(max(w, 1), 2),
                height=row_h - 4,
                css="total",
                title=f"{row['username']}: {_human_bytes(row['total'])}",
                text=_human_bytes(row["total"]),
            )
        )
        chart.labels.append((i * row_h + row_h - 5, row["username"]))
    return chart


def dashboard(now: datetime | None = None) -> dict[str, Any]:
    """The template context of the dashboard: three charts, three queries."""
    first, since = _since(now)
    return {
        "days": DAYS,
        "since": first,
        "charts": [logins_chart(first, since), bytes_chart(first, since)],
        "top_users": top_users_chart(since),
    }
