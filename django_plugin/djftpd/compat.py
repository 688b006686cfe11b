"""What differs between the Django versions djftpd supports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

View = TypeVar("View", bound=Callable[..., Any])

try:
    from django.contrib.auth.decorators import login_not_required
except ImportError:  # Django < 5.1: no LoginRequiredMiddleware, nothing to exempt from

    def login_not_required(view_func: View) -> View:  # type: ignore[no-redef]
        """Exempt a view from ``LoginRequiredMiddleware`` (a no-op before Django 5.1)."""
        return view_func


__all__ = ["login_not_required"]
