"""Run the djftpd sidecar in the foreground, configured from the Django settings::

    $ python manage.py startftpserver --listen 0.0.0.0:2121 --passive-ports 50000-50099 \
          --tls-cert /etc/ftp/cert.pem --tls-key /etc/ftp/key.pem --tls-mode explicit

It forwards SIGINT/SIGTERM/SIGHUP to the sidecar and exits with the sidecar's exit code.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from djftpd.sidecar import (
    TLS_MODES,
    SidecarNotFound,
    build_env,
    cli_overrides,
    find_binary,
    run_foreground,
)


class Command(BaseCommand):
    help = "Start the djftpd FTP server (the Go sidecar) in the foreground."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--listen", help='Control address "host:port" (DJFTPD_LISTEN).')
        parser.add_argument(
            "--passive-ports", help='Passive port range "first-last" (DJFTPD_PASSIVE_PORTS).'
        )
        parser.add_argument(
            "--public-host", help="Address announced in passive replies (DJFTPD_PUBLIC_HOST)."
        )
        parser.add_argument("--tls-cert", help="FTPS certificate, PEM file (DJFTPD_TLS_CERT).")
        parser.add_argument("--tls-key", help="FTPS private key, PEM file (DJFTPD_TLS_KEY).")
        parser.add_argument("--tls-mode", choices=TLS_MODES, help="FTPS mode (DJFTPD_TLS_MODE).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            binary = find_binary()
            env = build_env(
                cli_overrides(
                    listen=options["listen"],
                    passive_ports=options["passive_ports"],
                    public_host=options["public_host"],
                    tls_cert=options["tls_cert"],
                    tls_key=options["tls_key"],
                    tls_mode=options["tls_mode"],
                )
            )
        except (SidecarNotFound, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Starting {binary} on {env['DJFTPD_LISTEN']}")
        self.stdout.flush()
        sys.exit(run_foreground(env, binary))
