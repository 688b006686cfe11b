"""Test matrix of the djftpd Django app: pytest (the main suite, then the django-axes and the
custom user model tests under their own settings) and the migrations check on Django 4.2, 5.2,
6.0 and 6.1, each on a Python it supports, plus ruff. Run from django_plugin/::

    $ nox                  # every session
    $ nox -s "tests(python='3.11', django='5.2')"
    $ nox -s lint
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

#: (Python, Django) pairs. Django 6.x needs Python >= 3.12; Django 4.2's support ended in
#: April 2026 and djftpd drops it in its next minor release.
MATRIX = [("3.10", "4.2"), ("3.11", "5.2"), ("3.12", "6.0"), ("3.13", "6.1")]
#: Tests that need their own settings module (an app installed, another user model), since
#: Django's settings are fixed per pytest run: (settings module, tests).
SETTINGS_VARIANTS = [
    ("tests.settings_axes", "tests/axes"),
    ("tests.settings_custom_user", "tests/customuser"),
]


@nox.session
@nox.parametrize(("python", "django"), MATRIX)
def tests(session: nox.Session, django: str) -> None:
    """pytest, and no model change without its migration, on one Django version."""
    session.install("-e", ".[test]", f"django~={django}.0")
    session.run("pytest", *session.posargs)
    for settings_module, tests in SETTINGS_VARIANTS:
        session.run("pytest", "--ds", settings_module, tests, *session.posargs)
    for settings_module in ("tests.settings", "tests.settings_custom_user"):
        session.run(
            "django-admin",
            "makemigrations",
            "--check",
            "--dry-run",
            env={"DJANGO_SETTINGS_MODULE": settings_module, "PYTHONPATH": "."},
        )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
