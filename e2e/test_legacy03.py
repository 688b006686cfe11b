"""A project written for djftpd 0.3 serves FTP logins through ``manage.py startftpserver``
with no other change than mounting the djftpd URLs and setting DJFTPD["SECRET"] (issue "Django
app complete").

The project is ``e2e/legacy03_site``: ``"djftpd"`` in INSTALLED_APPS, a module-level
``get_ftp_home_dir(username)``, lowercase ``read_perms``/``write_perms``, ``FTP_WELCOME_MSG``,
``FTP_ADDRESS``/``FTP_PORT``, no ``DJFTPD["HOME_ROOT"]`` and no ``DJFTPD["DJANGO_URL"]``. The
sidecar learns where Django runs from ``DJFTPD_DJANGO_URL`` in startftpserver's environment
(Django is not on 127.0.0.1:8000 here); ``DJFTPD_OPS_LISTEN`` only lets the test wait on
``/readyz``. startftpserver gets no ``--listen``: it must use FTP_ADDRESS/FTP_PORT.
"""

from __future__ import annotations

import ftplib
import io
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BINARY, Stack, _stacks, free_port, wait_http

SITE = Path(__file__).resolve().parent / "legacy03_site"
WELCOME = "Welcome to the legacy FTP site"  # FTP_WELCOME_MSG in legacy03/settings.py
CREATE_USERS = """
from django.contrib.auth.models import User
User.objects.create_superuser("admin", "admin@example.com", "admin-pw")
User.objects.create_user("reader", "reader@example.com", "reader-pw")
"""


def ftp_to(site: Stack) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", site.ftp_port, timeout=20)
    return ftp


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert BINARY.exists(), f"{BINARY} is missing: run `make build` first"
    workdir = tmp_path_factory.mktemp("legacy03")
    # Nothing of djftpd's leaks in from our environment (no DJFTPD_HOME_ROOT, ...).
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DJFTPD_")
    }
    env.update(
        LEGACY_DATA_DIR=str(workdir),
        LEGACY_FTP_PORT=str(free_port()),
        DJFTPD_SECRET=secrets.token_hex(32),
        PYTHONUNBUFFERED="1",
    )
    s = Stack(workdir=workdir, env=env, site=SITE, wsgi="legacy03.wsgi")
    s.ftp_port = int(env["LEGACY_FTP_PORT"])
    # conftest attaches the processes' logs to a failing test's report.
    _stacks.append(s)
    try:
        s.manage("migrate", "--noinput")
        s.manage("shell", "-c", CREATE_USERS)
        s.start_django()

        s.ops_port = free_port()
        sidecar_env = dict(
            env,
            DJFTPD_BINARY=str(BINARY),
            DJFTPD_DJANGO_URL=f"http://127.0.0.1:{s.django_port}/ftp/",
            DJFTPD_OPS_LISTEN=f"127.0.0.1:{s.ops_port}",
        )
        sidecar = s.spawn(
            "sidecar", [sys.executable, "manage.py", "startftpserver"], sidecar_env
        )
        wait_http(f"http://127.0.0.1:{s.ops_port}/readyz", sidecar.proc)
        yield s
    finally:
        s.stop()
        _stacks.remove(s)


def test_startftpserver_uses_ftp_address_and_port_and_warns(site: Stack):
    log = site.processes[-1].log.read_text(errors="replace")
    assert f"on 127.0.0.1:{site.ftp_port}" in log
    assert "djftpd.W001" in log  # each 0.3 setting names its replacement
    assert "djftpd.W002" in log  # no DJFTPD["HOME_ROOT"]: homes need only be absolute


def test_superuser_gets_the_welcome_and_read_and_write_letters(site: Stack):
    ftp = ftp_to(site)
    try:
        reply = ftp.login("admin", "admin-pw")
        assert reply.startswith("230")
        assert WELCOME in reply

        ftp.storbinary("STOR hello.txt", io.BytesIO(b"hello from 0.3\n"))
        got = io.BytesIO()
        ftp.retrbinary("RETR hello.txt", got.write)
        assert got.getvalue() == b"hello from 0.3\n"
        assert "hello.txt" in ftp.nlst()
    finally:
        ftp.close()
    # The home is get_ftp_home_dir("admin"), created at login.
    assert (site.home("admin") / "hello.txt").read_bytes() == b"hello from 0.3\n"


def test_plain_user_gets_read_letters_only(site: Stack):
    home = site.home("reader")
    home.mkdir(parents=True, exist_ok=True)
    (home / "readme.txt").write_bytes(b"read me\n")
    ftp = ftp_to(site)
    try:
        reply = ftp.login("reader", "reader-pw")
        assert reply.startswith("230") and WELCOME in reply

        got = io.BytesIO()
        ftp.retrbinary("RETR readme.txt", got.write)
        assert got.getvalue() == b"read me\n"
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.storbinary("STOR upload.txt", io.BytesIO(b"nope"))
    finally:
        ftp.close()
    assert not (home / "upload.txt").exists()


def test_wrong_password_is_refused(site: Stack):
    ftp = ftp_to(site)
    try:
        with pytest.raises(ftplib.error_perm, match="^530"):
            ftp.login("reader", "wrong-pw")
    finally:
        ftp.close()
