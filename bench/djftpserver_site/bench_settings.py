"""Minimal Django project for django-ftpserver 1.x: default password hashers (PBKDF2),
SQLite in $BENCH_DJFTPSERVER_DIR, the same users as the djftpd demo (bench/run.py creates
them with bench_users.py)."""

import os
from pathlib import Path

DATA = Path(os.environ["BENCH_DJFTPSERVER_DIR"])
SECRET_KEY = "bench-not-secret"
DEBUG = False
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_ftpserver",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
FTPSERVER_HOST = "127.0.0.1"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
