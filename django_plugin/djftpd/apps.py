"""Django app configuration of djftpd. Add the app to your settings::

INSTALLED_APPS = [
    ...
    "djftpd",
]
"""

from django.apps import AppConfig


class DjftpdConfig(AppConfig):
    """Registers djftpd's system checks when Django starts."""

    name = "djftpd"
    verbose_name = "djftpd FTP server"

    def ready(self) -> None:
        from djftpd import checks  # noqa: F401  (registers the checks)
