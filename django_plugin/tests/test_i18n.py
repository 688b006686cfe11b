"""Translations: the app's names and messages go through gettext, and ``djftpd/locale/`` holds
a ``django.pot`` template that lists every one of them (``make messages`` regenerates it)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.functional import Promise

from djftpd.models import FTPAccount

PACKAGE = Path(__file__).resolve().parent.parent / "djftpd"
POT = PACKAGE / "locale" / "django.pot"

GERMAN = {
    "djftpd FTP server": "djftpd-FTP-Server",
    "FTP account": "FTP-Konto",
    "Must be an absolute path.": "Muss ein absoluter Pfad sein.",
    "Unknown permission letters %(letters)s.": "Unbekannte Rechte-Buchstaben %(letters)s.",
    'Must be inside %(root)s (DJFTPD["HOME_ROOT"]).': 'Muss in %(root)s (DJFTPD["HOME_ROOT"]).',
}


def write_mo(path: Path, catalog: dict[str, str]) -> None:
    """A GNU gettext ``.mo`` file for ``catalog`` (what msgfmt writes, without a hash table)."""
    header = "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural=(n != 1);\n"
    entries = sorted({"": header, **catalog}.items())
    ids = [key.encode() for key, _ in entries]
    strs = [value.encode() for _, value in entries]
    start = 7 * 4 + 16 * len(entries)
    table, data = [], b""
    for string in ids + strs:
        table.append((len(string), start + len(data)))
        data += string + b"\0"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        struct.pack("<7I", 0x950412DE, 0, len(entries), 28, 28 + 8 * len(entries), 0, 0)
        + b"".join(struct.pack("<2I", *pair) for pair in table)
        + data
    )


@pytest.fixture
def german(settings, tmp_path):
    write_mo(tmp_path / "de" / "LC_MESSAGES" / "django.mo", GERMAN)
    settings.LOCALE_PATHS = [str(tmp_path)]
    with translation.override("de"):
        yield


def test_verbose_names_are_lazy():
    assert isinstance(apps.get_app_config("djftpd").verbose_name, Promise)
    assert isinstance(FTPAccount._meta.verbose_name, Promise)


def test_names_are_translated(german):
    assert str(apps.get_app_config("djftpd").verbose_name) == "djftpd-FTP-Server"
    assert str(FTPAccount._meta.verbose_name) == "FTP-Konto"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("home_dir", "perms", "messages"),
    [
        ("ftp/a", "", {"home_dir": ["Muss ein absoluter Pfad sein."]}),
        ("/srv/ftp/a", "elrX", {"perms": ["Unbekannte Rechte-Buchstaben 'X'."]}),
        ("/etc/a", "", {"home_dir": ['Muss in /srv/ftp (DJFTPD["HOME_ROOT"]).']}),
    ],
)
def test_validation_messages_are_translated(german, alice, home_dir, perms, messages):
    with pytest.raises(ValidationError) as excinfo:
        FTPAccount(user=alice, home_dir=home_dir, perms=perms).full_clean()

    assert excinfo.value.message_dict == messages


def msgids(pot: str) -> set[str]:
    """The msgids of a ``.po``/``.pot`` text (continuation lines joined), without the header."""
    found = set()
    for match in re.finditer(r'^msgid ((?:"(?:[^"\\]|\\.)*"\s*)+)', pot, re.MULTILINE):
        quoted = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', match.group(1)))
        found.add(re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), quoted))
    return found - {""}


@pytest.mark.skipif(not shutil.which("xgettext"), reason="needs GNU gettext (xgettext)")
def test_pot_lists_every_message(tmp_path):
    copy = tmp_path / "djftpd"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(copy / "locale")
    (copy / "locale").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "--all", "--keep-pot", "--no-location"],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )

    expected = msgids((copy / "locale" / "django.pot").read_text(encoding="utf-8"))
    shipped = msgids(POT.read_text(encoding="utf-8")) if POT.exists() else set()
    assert set(GERMAN) <= expected
    assert shipped == expected, "djftpd/locale/django.pot is stale: run `make messages`"
