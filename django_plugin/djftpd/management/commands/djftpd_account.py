"""Manage FTP accounts (:class:`~djftpd.models.FTPAccount`) from the shell or a script::

    $ python manage.py djftpd_account create alice --home /srv/ftp/alice --perms elr --quota 10G
    Created the FTP account of alice.
    $ python manage.py djftpd_account update alice --perms elradfmw --no-quota --max-sessions 2
    $ python manage.py djftpd_account disable alice        # every FTP login refused
    $ python manage.py djftpd_account enable alice
    $ python manage.py djftpd_account list --format json
    $ python manage.py djftpd_account delete alice         # the user stays; site defaults apply

The user must exist (``USERNAME`` is its ``USERNAME_FIELD``). Values are checked as the admin
checks them (permission letters among ``elradfmwMT``, an absolute home inside
``DJFTPD["HOME_ROOT"]``); an empty ``--home``, ``--perms`` or ``--welcome`` means the site
default. Every change is saved through the model, so the running sidecars are told to forget
the user's cached login (``DJFTPD["SIDECAR_URLS"]``). Any error exits with status 1 and
changes nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from djftpd.models import FTPAccount
from djftpd.policy import canonical_perms

#: FTPAccount field -> the option that sets it, for error messages.
OPTIONS = {
    "home_dir": "--home",
    "perms": "--perms",
    "quota_bytes": "--quota",
    "max_sessions": "--max-sessions",
    "welcome": "--welcome",
}
#: Suffixes of --quota: powers of 1024.
UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"([0-9]+)\s*([KMGT]?)(?:iB)?", re.IGNORECASE)
# The largest values the columns hold on every database (SQLite on Django 4.2 does not check).
MAX_QUOTA = 2**63 - 1
MAX_SESSIONS = 2**31 - 1
#: Text columns of ``list``: header, field.
COLUMNS = (
    ("USER", "username"),
    ("ENABLED", "enabled"),
    ("HOME", "home_dir"),
    ("PERMS", "perms"),
    ("QUOTA", "quota_bytes"),
    ("SESSIONS", "max_sessions"),
)


def parse_size(value: str) -> int:
    """``"10G"`` -> 10 * 2**30; ValueError for anything but digits and one K/M/G/T suffix."""
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a size in bytes such as 1048576, 500M or 10G")
    number, unit = match.groups()
    size = int(number) * UNITS[unit.upper()]
    if size > MAX_QUOTA:
        raise ValueError(f"{value!r} is more than {MAX_QUOTA} bytes")
    return size


def parse_count(value: str) -> int:
    """A whole number from 0 to MAX_SESSIONS; ValueError otherwise."""
    if not value.strip().isdigit():
        raise ValueError(f"{value!r} is not a whole number >= 0")
    if int(value) > MAX_SESSIONS:
        raise ValueError(f"{value!r} is more than {MAX_SESSIONS}")
    return int(value)


class Command(BaseCommand):
    help = "Create, change, list, disable, enable or delete the FTP account of a user."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        create = actions.add_parser("create", help="Give an existing user an FTP account.")
        update = actions.add_parser("update", help="Change fields of an FTP account.")
        for sub in (create, update):
            sub.add_argument("username", metavar="USERNAME")
            self.add_field_options(sub)
        create.add_argument(
            "--disabled", action="store_true", help="Create the account with every login refused."
        )
        for name, text in (
            ("disable", "Refuse every FTP login of the user."),
            ("enable", "Allow FTP logins of the user again."),
            ("delete", "Delete the FTP account (not the user): the site defaults apply."),
        ):
            actions.add_parser(name, help=text).add_argument("username", metavar="USERNAME")
        listing = actions.add_parser("list", help="Show FTP accounts.")
        listing.add_argument(
            "usernames", nargs="*", metavar="USERNAME", help="Only these users' accounts."
        )
        listing.add_argument("--format", choices=("text", "json"), default="text")

    def add_field_options(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--home",
            metavar="PATH",
            help='Absolute home directory inside DJFTPD["HOME_ROOT"]; "": the site default.',
        )
        parser.add_argument(
            "--perms",
            metavar="LETTERS",
            help='Permission letters among elradfmwMT (pyftpdlib\'s); "": the site default.',
        )
        quota = parser.add_mutually_exclusive_group()
        quota.add_argument(
            "--quota", metavar="BYTES", help="Quota in bytes, or with a suffix K, M, G or T."
        )
        quota.add_argument("--no-quota", action="store_true", help="No quota.")
        sessions = parser.add_mutually_exclusive_group()
        sessions.add_argument(
            "--max-sessions", metavar="N", help="Simultaneous FTP sessions allowed."
        )
        sessions.add_argument(
            "--no-max-sessions", action="store_true", help="No per-user session limit."
        )
        parser.add_argument(
            "--welcome", metavar="TEXT", help='Text of the 230 reply; "": the site default.'
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity = options["verbosity"]
        action = options["action"]
        if action == "list":
            self.list_accounts(options["usernames"], options["format"])
            return
        user = self.get_user(options["username"])
        if action == "create":
            self.create(user, options)
        elif action == "update":
            self.update(self.get_account(user), options)
        elif action in ("enable", "disable"):
            self.set_enabled(self.get_account(user), action == "enable")
        elif action == "delete":
            self.get_account(user).delete()
            self.report(f"Deleted the FTP account of {user.get_username()}; the user remains.")

    def get_user(self, username: str) -> Any:
        User = get_user_model()
        try:
            return User._default_manager.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"No user {username!r}.") from None

    def get_account(self, user: Any) -> FTPAccount:
        try:
            return FTPAccount.objects.get(user=user)
        except FTPAccount.DoesNotExist:
            raise CommandError(
                f"{user.get_username()!r} has no FTP account "
                f"(djftpd_account create {user.get_username()} makes one)."
            ) from None

    def create(self, user: Any, options: dict[str, Any]) -> None:
        if FTPAccount.objects.filter(user=user).exists():
            raise CommandError(
                f"{user.get_username()!r} has an FTP account already (use djftpd_account update)."
            )
        account = FTPAccount(user=user, enabled=not options["disabled"])
        self.apply_fields(account, options)
        self.save(account)
        self.report(f"Created the FTP account of {user.get_username()}.")

    def update(self, account: FTPAccount, options: dict[str, Any]) -> None:
        changed = self.apply_fields(account, options)
        if not changed:
            raise CommandError(
                "Nothing to update: give --home, --perms, --quota, --no-quota, --max-sessions, "
                "--no-max-sessions or --welcome."
            )
        self.save(account)
        name = account.user.get_username()
        self.report(f"Updated the FTP account of {name}: {', '.join(changed)}.")

    def set_enabled(self, account: FTPAccount, enabled: bool) -> None:
        state = "enabled" if enabled else "disabled"
        name = account.user.get_username()
        if account.enabled == enabled:
            self.report(f"The FTP account of {name} is {state} already.")
            return
        account.enabled = enabled
        account.save()
        self.report(f"The FTP account of {name} is {state}.")

    def apply_fields(self, account: FTPAccount, options: dict[str, Any]) -> list[str]:
        """Set the fields given in ``options`` on ``account``; return their names."""
        values: dict[str, Any] = {}
        for field, option in (("home_dir", "home"), ("perms", "perms"), ("welcome", "welcome")):
            if options.get(option) is not None:
                values[field] = options[option]
        try:
            if options.get("no_quota"):
                values["quota_bytes"] = None
            elif options.get("quota") is not None:
                values["quota_bytes"] = parse_size(str(options["quota"]))
        except ValueError as exc:
            raise CommandError(f"--quota: {exc}.") from None
        try:
            if options.get("no_max_sessions"):
                values["max_sessions"] = None
            elif options.get("max_sessions") is not None:
                values["max_sessions"] = parse_count(str(options["max_sessions"]))
        except ValueError as exc:
            raise CommandError(f"--max-sessions: {exc}.") from None
        for field, value in values.items():
            setattr(account, field, value)
        return list(values)

    def save(self, account: FTPAccount) -> None:
        """Validate as the admin does, then save (which purges the sidecars' cache)."""
        try:
            account.full_clean()
        except ValidationError as exc:
            errors = [
                f"{OPTIONS.get(field, field)}: {message}"
                for field, messages in exc.message_dict.items()
                for message in messages
            ]
            raise CommandError("Invalid FTP account: " + " ".join(errors)) from None
        if account.perms:
            account.perms = canonical_perms(account.perms)
        account.save()

    def list_accounts(self, usernames: list[str], output: str) -> None:
        User = get_user_model()
        accounts = FTPAccount.objects.select_related("user").order_by(
            f"user__{User.USERNAME_FIELD}"
        )
        if usernames:
            users = [self.get_user(name) for name in usernames]
            accounts = accounts.filter(user__in=users)
        rows = [self.row(account) for account in accounts]
        if output == "json":
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.report("No FTP accounts.")
            return
        table = [[header for header, _ in COLUMNS]]
        table += [[self.cell(row[field]) for _, field in COLUMNS] for row in rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
        for line in table:
            cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            self.stdout.write("  ".join(cells).rstrip())

    @staticmethod
    def row(account: FTPAccount) -> dict[str, Any]:
        """One account as JSON-ready values: "" is the site default, None no limit."""
        return {
            "username": account.user.get_username(),
            "enabled": account.enabled,
            "home_dir": account.home_dir,
            "perms": account.perms,
            "quota_bytes": account.quota_bytes,
            "max_sessions": account.max_sessions,
            "welcome": account.welcome,
            "created": account.created.isoformat(),
            "updated": account.updated.isoformat(),
        }

    @staticmethod
    def cell(value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        return "-" if value in ("", None) else str(value)

    def report(self, message: str) -> None:
        if self.verbosity >= 1:
            self.stdout.write(message)
