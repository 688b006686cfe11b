"""An authentication backend that records what it was called with, to see what backends such
as django-axes see of the request."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

#: request.META of every authenticate() call, oldest first.
seen_meta: list[dict[str, Any]] = []


class RecordingBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> Any:
        seen_meta.append(dict(request.META) if request is not None else {})
        return None  # leave the decision to the next backend
