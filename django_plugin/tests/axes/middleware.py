"""A middleware that does what django-axes' middleware did before axes 6: compute the
``request.axes_*`` attributes before the view runs, from the request as it arrived."""

from __future__ import annotations

from collections.abc import Callable

from axes.handlers.proxy import AxesProxyHandler
from django.http import HttpRequest, HttpResponse


class EarlyAxesAttributesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        AxesProxyHandler.update_request(request)
        return self.get_response(request)
