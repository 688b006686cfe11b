"""Set a demo user's password without a prompt (``changepassword`` asks twice)::

$ python manage.py demo_password alice new-password
alice: password changed

Saving the user makes djftpd tell the sidecar to forget alice's cached login.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Set a user's password (for the demo and the end-to-end tests)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("password")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User._default_manager.get_by_natural_key(options["username"])
        except User.DoesNotExist:
            raise CommandError(f"no user {options['username']!r}") from None
        user.set_password(options["password"])
        user.save()
        self.stdout.write(f"{user.get_username()}: password changed")
