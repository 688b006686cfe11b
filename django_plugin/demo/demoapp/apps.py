"""The demo site's own app: the demo_users and demo_password commands and a receiver of every
djftpd signal."""

from django.apps import AppConfig


class DemoappConfig(AppConfig):
    name = "demoapp"

    def ready(self) -> None:
        from demoapp import receivers

        receivers.connect()
