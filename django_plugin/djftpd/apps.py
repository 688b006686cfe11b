"""Django app configuration of djftpd. Add the app to your settings::

INSTALLED_APPS = [
    ...
    "djftpd",
]
"""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DjftpdConfig(AppConfig):
    """Registers djftpd's system checks, the legacy ftp_handler bridge and the cache purge
    receivers when Django starts."""

    name = "djftpd"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("djftpd FTP server")

    def ready(self) -> None:
        from djftpd import checks, legacy, receivers, signals  # noqa: F401  (checks register)

        legacy.connect()
        receivers.connect()
