"""djftpd's tests with a custom user model (``pytest --ds tests.settings_custom_user
tests/customuser``): ``customuser.User`` logs in with its email address, has no username
field, and the admin does not use Django's ``UserAdmin`` for it."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.customuser"]
AUTH_USER_MODEL = "customuser.User"
