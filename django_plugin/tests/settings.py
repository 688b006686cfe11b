"""Settings for djftpd's own test suite (pytest-django: DJANGO_SETTINGS_MODULE=tests.settings)."""

SECRET_KEY = "djftpd-tests-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "djftpd",
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

ROOT_URLCONF = "tests.urls"
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

# Fast hashing: the tests create users, they do not test hashers.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

DJFTPD = {
    "SECRET": "tests-secret-0123456789abcdef-0123456789",
    "HOME_ROOT": "/srv/ftp",
}
