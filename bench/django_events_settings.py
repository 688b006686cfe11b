"""The demo site's settings for bench/django_events.py: BENCH_RECEIVERS=0 leaves the demo
app (and its receiver of every signal) out; BENCH_DJFTPD holds DJFTPD overrides (a Python
literal dict); BENCH_DEBUG=0 turns DEBUG off."""

from __future__ import annotations

import ast
import os

from demo.settings import *
from demo.settings import DJFTPD, INSTALLED_APPS

if os.environ.get("BENCH_RECEIVERS") == "0":
    INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "demoapp"]
DJFTPD = {**DJFTPD, **ast.literal_eval(os.environ.get("BENCH_DJFTPD") or "{}")}
# BENCH_DEBUG=0: DEBUG off, as in production (the demo runs with DEBUG on, which keeps
# every query in connection.queries).
if os.environ.get("BENCH_DEBUG") == "0":
    DEBUG = False
