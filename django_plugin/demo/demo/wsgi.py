"""WSGI entry point of the demo site, for ``gunicorn demo.wsgi`` run from django_plugin/demo."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

application = get_wsgi_application()
