#!/usr/bin/env python
"""A Django project set up the way djftpd 0.3's README told users to (see legacy03/settings.py),
run by e2e/test_legacy03.py. Environment: LEGACY_DATA_DIR (database and FTP homes),
LEGACY_FTP_PORT (FTP_PORT) and DJFTPD_SECRET."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "legacy03.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
