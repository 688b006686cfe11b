#!/usr/bin/env python
"""Management script of the djftpd demo site::

$ export DJFTPD_SECRET=$(python -c "import secrets; print(secrets.token_hex(32))")
$ python manage.py migrate && python manage.py demo_users
$ gunicorn demo.wsgi            # or: python manage.py runserver
"""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
