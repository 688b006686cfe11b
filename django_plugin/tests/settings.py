"""Settings for djftpd's own test suite (pytest-django: DJANGO_SETTINGS_MODULE=tests.settings).

The database is SQLite in memory unless ``DJFTPD_TEST_DB`` names a server, as
``tests/dbserver.py`` sets it: ``postgresql://user@host:port/name`` or ``mysql://...``.
"""

import os
from typing import Any
from urllib.parse import urlsplit

SECRET_KEY = "djftpd-tests-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]  # the sidecar reaches Django at 127.0.0.1

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "djftpd",
]


def database(url: str) -> dict[str, Any]:
    """Django's DATABASES entry for a ``postgresql://`` or ``mysql://`` URL."""
    parts = urlsplit(url)
    engines = {"postgresql": "postgresql", "mysql": "mysql"}
    if parts.scheme not in engines:
        raise ValueError(f"DJFTPD_TEST_DB: unknown scheme {parts.scheme!r}")
    db: dict[str, Any] = {
        "ENGINE": f"django.db.backends.{engines[parts.scheme]}",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }
    if parts.scheme == "mysql":
        db["OPTIONS"] = {"charset": "utf8mb4"}
        db["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    return db


if os.environ.get("DJFTPD_TEST_DB"):
    DATABASES = {"default": database(os.environ["DJFTPD_TEST_DB"])}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

ROOT_URLCONF = "tests.urls"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

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

# Fast hashing: the tests create users, they do not test hashers.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

DJFTPD = {
    "SECRET": "tests-secret-0123456789abcdef-0123456789",
    "HOME_ROOT": "/srv/ftp",
}
