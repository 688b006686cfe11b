"""Check the djftpd setup: Django's system checks of djftpd, then a signed ping to every
sidecar (``DJFTPD["SIDECAR_URLS"]``, or the URLs given)::

    $ python manage.py djftpd_check
    System checks of djftpd: no errors.
    Django URL http://127.0.0.1:8000/ftp/: host allowed, not redirected.
    http://127.0.0.1:9121/ping: ok (the sidecar shares our secret)
    http://10.0.0.7:9121/ping: secret mismatch (the sidecar refused our signature (403): ...)

It exits with status 1 when a check reports an error or a sidecar fails.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser, SystemCheckError

from djftpd.checks import django_url_problems
from djftpd.conf import app_settings, secret_bytes
from djftpd.sidecar_client import PING_TIMEOUT, ping, sidecar_urls

LABELS = {
    "ok": "ok",
    "secret_mismatch": "secret mismatch",
    "clock_skew": "clocks out of sync",
    "bad_answer": "bad answer",
    "storage_mismatch": "storage mismatch",
    "http_error": "error",
    "unreachable": "unreachable",
}


class Command(BaseCommand):
    help = (
        "Run djftpd's system checks, then ping each sidecar's ops listener, signed: is it "
        "reachable, and does it share DJFTPD's secret?"
    )
    # Checks run in handle(), for djftpd only, and are reported rather than fatal.
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "urls",
            nargs="*",
            metavar="URL",
            help='Ops base URLs of the sidecars (default: DJFTPD["SIDECAR_URLS"], or when unset '
            "the local sidecar's ops listener).",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=PING_TIMEOUT,
            help=f"Seconds to wait for each sidecar (default {PING_TIMEOUT:g}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        failures = 0
        try:
            self.check(app_configs=[apps.get_app_config("djftpd")])
        except SystemCheckError as exc:
            self.stderr.write(str(exc), ending="\n")
            failures += 1
        else:
            self.stdout.write("System checks of djftpd: no errors.")
        failures += self.report_django_url()

        urls = options["urls"] or sidecar_urls()
        if not urls:
            self.stdout.write(
                self.style.WARNING(
                    'No sidecar to ping: DJFTPD["SIDECAR_URLS"] is empty (or pass URLs).'
                )
            )
        else:
            try:
                secret = secret_bytes()
            except ImproperlyConfigured as exc:
                self.stderr.write(self.style.ERROR(f"Cannot ping the sidecars: {exc}"))
                failures += len(urls)
            else:
                failures += self.ping_all(urls, secret, options["timeout"])

        if failures:
            raise CommandError(f"djftpd_check: {failures} problem(s) found.", returncode=1)

    def report_django_url(self) -> int:
        """Whether the sidecar's requests can reach the djftpd views (checks W006, W007): a
        refused host or an HTTPS redirect fails every FTP login, so each counts as a problem."""
        problems = django_url_problems()
        for problem in problems:
            self.stderr.write(self.style.ERROR(f"Django URL: {problem.msg} {problem.hint}"))
        if not problems:
            self.stdout.write(
                f"Django URL {app_settings.DJANGO_URL}: host allowed, not redirected."
            )
        return len(problems)

    def ping_all(self, urls: list[str], secret: bytes, timeout: float) -> int:
        failed = 0
        for url in urls:
            result = ping(url, secret=secret, timeout=timeout)
            line = f"{result.url}: {LABELS[result.status]} ({result.detail})"
            if result.ok:
                self.stdout.write(self.style.SUCCESS(line))
            else:
                self.stderr.write(self.style.ERROR(line))
                failed += 1
        return failed
