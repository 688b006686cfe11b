"""Settings of the djftpd demo site, which the end-to-end tests run under gunicorn::

    $ cd django_plugin/demo
    $ DJFTPD_SECRET=... DJFTPD_DEMO_DIR=/tmp/demo gunicorn demo.wsgi

Environment: DJFTPD_SECRET (required, shared with the sidecar), DJFTPD_DEMO_DIR (database and
FTP homes; default <repo>/.demo), DJFTPD_DJANGO_URL (default http://127.0.0.1:8000/ftp/),
DJFTPD_SIDECAR_URLS (comma-separated ops URLs of the sidecars, told to purge their login cache
when a user changes; default http://127.0.0.1:9121/).
Users: alice (staff and superuser, every permission), bob (read-only); see ``demo_users``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

REPO_DIR = Path(__file__).resolve().parents[3]
DEMO_DIR = Path(os.environ.get("DJFTPD_DEMO_DIR") or REPO_DIR / ".demo").resolve()
DEMO_DIR.mkdir(parents=True, exist_ok=True)

try:
    DJFTPD_SECRET = os.environ["DJFTPD_SECRET"]
except KeyError:
    raise ImproperlyConfigured(
        "Set DJFTPD_SECRET (the secret shared with the sidecar), e.g. "
        'export DJFTPD_SECRET=$(python -c "import secrets; print(secrets.token_hex(32))")'
    ) from None

SECRET_KEY = "djftpd-demo-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "djftpd",
    "demoapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo.urls"
WSGI_APPLICATION = "demo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DEMO_DIR / "db.sqlite3"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"


def ftp_perms(user: Any) -> str:
    """Staff and superusers may do everything, everyone else may only list and download."""
    return "elradfmwMT" if user.is_staff or user.is_superuser else "elr"


DJFTPD = {
    "SECRET": DJFTPD_SECRET,
    "DJANGO_URL": os.environ.get("DJFTPD_DJANGO_URL", "http://127.0.0.1:8000/ftp/"),
    "HOME_ROOT": str(DEMO_DIR / "ftp"),
    "HOME_DIR": str(DEMO_DIR / "ftp" / "{username}"),
    "PERMS": ftp_perms,
    "WELCOME": "Welcome to the djftpd demo.",
    # The sidecar's event spool lives in DEMO_DIR/state/spool: events survive a restart.
    "STATE_DIR": str(DEMO_DIR / "state"),
    "SIDECAR_URLS": [
        url.strip()
        for url in os.environ.get("DJFTPD_SIDECAR_URLS", "http://127.0.0.1:9121/").split(",")
        if url.strip()
    ],
}
# DJFTPD_STORAGE=s3://BUCKET/PREFIX (make demo passes it, with the AWS_* variables, to both
# sides): homes /alice and /bob are then the keys PREFIX/alice/... and PREFIX/bob/...
if os.environ.get("DJFTPD_STORAGE", "local") != "local":
    DJFTPD.update(STORAGE=os.environ["DJFTPD_STORAGE"], HOME_ROOT="/", HOME_DIR="/{username}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"djftpd": {"handlers": ["console"], "level": "INFO"}},
}
