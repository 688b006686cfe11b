"""Django app configuration of djftpd. Add the app to your settings::

INSTALLED_APPS = [
    ...
    "djftpd",
]
"""

from django.apps import AppConfig


class DjftpdConfig(AppConfig):
    """Registers djftpd's system checks and the legacy ftp_handler bridge when Django starts."""

    name = "djftpd"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "djftpd FTP server"

    def ready(self) -> None:
        from djftpd import checks, legacy, signals  # noqa: F401  (checks register on import)

        legacy.connect()
