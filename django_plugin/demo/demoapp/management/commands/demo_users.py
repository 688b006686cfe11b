"""Create or reset the demo site's FTP users, idempotently::

$ python manage.py demo_users
alice: created (superuser, password alice-password)
bob: created (password bob-password)
admin: created (superuser, password admin-password)

``admin`` is the demo's admin login (http://127.0.0.1:8000/admin/: live FTP sessions, the FTP
dashboard above the event list).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

#: username -> (password, is_superuser/is_staff)
DEMO_USERS = {
    "alice": ("alice-password", True),
    "bob": ("bob-password", False),
    "admin": ("admin-password", True),
}


class Command(BaseCommand):
    help = (
        "Create the demo users alice (superuser), bob and admin (superuser), or reset them "
        "if they exist."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        for username, (password, admin) in DEMO_USERS.items():
            user, created = User.objects.get_or_create(username=username)
            user.is_active = True
            user.is_staff = user.is_superuser = admin
            user.set_password(password)
            user.save()
            role = "superuser, " if admin else ""
            state = "created" if created else "reset"
            self.stdout.write(f"{username}: {state} ({role}password {password})")
