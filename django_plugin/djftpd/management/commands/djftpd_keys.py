"""Manage users' SSH public keys for SFTP logins, for scripts::

    $ python manage.py djftpd_keys add alice ~/.ssh/id_ed25519.pub
    Added SHA256:XwA45j+EJ/stE/IjFPsS2w770WmEb/JzDHRobFCai6U (ssh-ed25519, 256 bits) for alice.
    $ python manage.py djftpd_keys list alice
    SHA256:XwA45j+EJ/stE/IjFPsS2w770WmEb/JzDHRobFCai6U ssh-ed25519 256 enabled alice@laptop
    $ python manage.py djftpd_keys remove alice SHA256:XwA45j+EJ/stE/IjFPsS2w770WmEb/JzDHRobFCai6U

``add`` reads every key line of FILE (``-`` or no FILE: standard input; blank lines and
``#`` comments skipped), labelled with the line's comment; a bad line adds nothing. ``remove``
takes a FILE of keys, ``-``, or one ``SHA256:`` fingerprint; ``--all`` removes every key of
the user. Each change purges the sidecars' cache of the user, so a removed key is refused at
once.
"""

from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from djftpd.models import SSHKey
from djftpd.sshkeys import InvalidKey, PublicKey, parse_public_key


class Command(BaseCommand):
    help = "Add, list or remove a user's SSH public keys (SFTP logins)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["add", "list", "remove"])
        parser.add_argument("username")
        parser.add_argument(
            "source",
            nargs="?",
            default="-",
            help="A file of public keys, - for standard input, or (remove) a SHA256: fingerprint.",
        )
        parser.add_argument("--all", action="store_true", help="remove: every key of the user.")
        parser.add_argument("--label", default="", help="add: label instead of the key comment.")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User._default_manager.get_by_natural_key(options["username"])
        except User.DoesNotExist:
            raise CommandError(f"No user named {options['username']!r}.") from None
        action = options["action"]
        if action == "list":
            self.list_keys(user)
        elif action == "add":
            self.add_keys(user, self.read_keys(options["source"]), options["label"])
        else:
            self.remove_keys(user, options["source"], options["all"])

    def read_keys(self, source: str) -> list[PublicKey]:
        """The keys of ``source`` (a file or ``-``); CommandError naming a bad line."""
        try:
            if source == "-":
                text = sys.stdin.read()
            else:
                with open(source, encoding="utf-8") as f:
                    text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {source}: {exc}") from None
        keys = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                keys.append(parse_public_key(line))
            except InvalidKey as exc:
                raise CommandError(f"{source}, line {number}: {exc}") from None
        if not keys:
            raise CommandError(f"No public key in {source}.")
        return keys

    def list_keys(self, user: Any) -> None:
        for key in SSHKey.objects.filter(user=user).order_by("created"):
            state = "enabled" if key.enabled else "disabled"
            used = f"last used {key.last_used:%Y-%m-%d %H:%M}" if key.last_used else "never used"
            self.stdout.write(
                f"{key.fingerprint} {key.type} {key.bits} {state} {used} {key.label}".rstrip()
            )

    @transaction.atomic
    def add_keys(self, user: Any, keys: list[PublicKey], label: str) -> None:
        for parsed in keys:
            key = SSHKey(user=user, key=parsed.line, label=(label or parsed.comment)[:100])
            try:
                key.full_clean()
            except ValidationError as exc:
                raise CommandError(f"{parsed.fingerprint}: {'; '.join(exc.messages)}") from None
            key.save()
            self.stdout.write(
                f"Added {key.fingerprint} ({key.type}, {key.bits} bits) for {user.get_username()}."
            )

    def remove_keys(self, user: Any, source: str, remove_all: bool) -> None:
        keys = SSHKey.objects.filter(user=user)
        if not remove_all:
            if source.startswith("SHA256:"):
                fingerprints = [source]
            else:
                fingerprints = [key.fingerprint for key in self.read_keys(source)]
            keys = keys.filter(fingerprint__in=fingerprints)
        removed = 0
        with transaction.atomic():
            for key in keys:  # one by one, so each delete sends its purge signal
                key.delete()
                removed += 1
        if not removed:
            raise CommandError(f"No matching key for {user.get_username()}.")
        self.stdout.write(f"Removed {removed} key(s) of {user.get_username()}.")
