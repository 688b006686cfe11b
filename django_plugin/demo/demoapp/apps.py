"""The demo site's own app: only the ``demo_users`` command."""

from django.apps import AppConfig


class DemoappConfig(AppConfig):
    name = "demoapp"
