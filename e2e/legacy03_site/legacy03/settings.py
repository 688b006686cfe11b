"""Settings of a project written for djftpd 0.3, following its README.

Only two things are new for djftpd 1.x, both marked "djftpd 1.x": DJFTPD["SECRET"] here and
the djftpd URLs in urls.py. Everything else is djftpd 0.3's configuration, unchanged.
"""

import os

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.environ["LEGACY_DATA_DIR"]

SECRET_KEY = "legacy03-e2e-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "djftpd",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "legacy03.urls"
WSGI_APPLICATION = "legacy03.wsgi.application"

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
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(DATA_DIR, "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
STATIC_URL = "/static/"

# djftpd 0.3
FTP_ROOT = os.path.join(DATA_DIR, "ftp")


def get_ftp_home_dir(username):
    return os.path.join(FTP_ROOT, username)


read_perms = "elr"
write_perms = "adfmw"
FTP_WELCOME_MSG = "Welcome to the legacy FTP site"
FTP_ADDRESS = "127.0.0.1"
FTP_PORT = int(os.environ["LEGACY_FTP_PORT"])  # 0.3's default, 21, needs root

# djftpd 1.x
DJFTPD = {"SECRET": os.environ["DJFTPD_SECRET"]}
