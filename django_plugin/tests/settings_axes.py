"""djftpd's tests with django-axes, as its docs install it (``pytest --ds tests.settings_axes
tests/axes``): the app, its backend first, its middleware last."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [*INSTALLED_APPS, "axes"]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
MIDDLEWARE = [*MIDDLEWARE, "axes.middleware.AxesMiddleware"]
AXES_FAILURE_LIMIT = 10
