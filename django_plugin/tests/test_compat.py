"""djftpd 0.3's import paths and platforms without POSIX signals (issue 14 items 6, 16)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import djftpd

PROJECT = Path(__file__).resolve().parent.parent


def test_0_3_import_path_works_with_a_deprecation_warning():
    """Every working 0.3 script did ``from djftpd.authorizer import
    create_django_ftpserver`` (0.3's ``__init__`` was empty)."""
    with pytest.warns(DeprecationWarning, match=r"from djftpd import create_django_ftpserver"):
        from djftpd.authorizer import create_django_ftpserver

    assert create_django_ftpserver is djftpd.create_django_ftpserver


def test_0_3_script_sees_the_warning_by_default():
    """Run as ``python script.py``, with Python's default warning filters: the warning
    names the script's own line, so it is shown."""
    script = textwrap.dedent(
        """
        from djftpd.authorizer import create_django_ftpserver
        print(create_django_ftpserver.__module__)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "djftpd"
    assert "DeprecationWarning" in result.stderr
    assert "<string>:2" in result.stderr


def test_unknown_name_of_the_shim_is_an_attribute_error():
    import djftpd.authorizer

    with pytest.raises(AttributeError):
        djftpd.authorizer.DjangoFtpAuthorizer  # noqa: B018


def test_import_without_sighup_does_not_fail():
    """Windows has no SIGHUP: importing the app, startftpserver included, must still work."""
    script = textwrap.dedent(
        """
        import signal
        del signal.SIGHUP
        import django
        from django.conf import settings
        apps = ["django.contrib.auth", "django.contrib.contenttypes", "djftpd"]
        settings.configure(INSTALLED_APPS=apps)
        django.setup()
        import djftpd.sidecar
        import djftpd.management.commands.startftpserver
        print(sorted(s.name for s in djftpd.sidecar.FORWARDED_SIGNALS))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['SIGINT', 'SIGTERM']"
