"""The wheel and the sdist, built as a release would be, hold what a project needs: the
package, its migrations, its management commands and ``py.typed``; the wheel, installed alone
in a fresh virtualenv, runs ``migrate`` and finds no missing migration.

Takes a few seconds (``-m "not slow"`` skips it). The build uses the hatchling installed here
(``--no-isolation``: no download); the new virtualenv gets the wheel, without pip, plus Django
and its dependencies from this environment (symlinked), so no network is needed either.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

import djftpd

pytestmark = [
    pytest.mark.slow,
    # Releases are built from the repository: an unpacked sdist has no ../testdata to copy in.
    pytest.mark.skipif(
        (Path(__file__).resolve().parent.parent / "PKG-INFO").exists(),
        reason="running from an unpacked sdist; builds are made from the repository",
    ),
]

PROJECT = Path(__file__).resolve().parent.parent
NAME = f"djftpd-{djftpd.__version__}"

IN_BOTH = {
    "djftpd/__init__.py",
    "djftpd/apps.py",
    "djftpd/urls.py",
    "djftpd/py.typed",
    "djftpd/migrations/__init__.py",
    "djftpd/migrations/0001_events.py",
    "djftpd/migrations/0002_ftpaccount.py",
    "djftpd/migrations/0004_sshkey.py",
    "djftpd/migrations/0005_ftpevent_protocol.py",
    "djftpd/management/__init__.py",
    "djftpd/management/commands/__init__.py",
    "djftpd/management/commands/startftpserver.py",
    "djftpd/management/commands/djftpd_check.py",
    "djftpd/management/commands/djftpd_prune_events.py",
    "djftpd/management/commands/djftpd_keys.py",
    "djftpd/management/commands/djftpd_account.py",
    "djftpd/locale/django.pot",
}
SDIST_ONLY = {
    "pyproject.toml",
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "PKG-INFO",
    "tests/conftest.py",
    "tests/settings.py",
}

#: Django and what it imports, made visible to the new virtualenv.
DJANGO_DEPS = ("django", "asgiref", "sqlparse", "typing_extensions")

SMOKE = """
import sys
from pathlib import Path

import djftpd
import djftpd.apps
import djftpd.management.commands.djftpd_check
import djftpd.management.commands.startftpserver

assert Path(djftpd.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), djftpd.__file__

import django
from django.conf import settings

sys.path.insert(0, sys.argv[1])  # the project's urls.py
settings.configure(
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "djftpd",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    ROOT_URLCONF="urls",
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ],
    SECRET_KEY="packaging-test",
    ALLOWED_HOSTS=["127.0.0.1"],
    USE_TZ=True,
    DJFTPD={"SECRET": "s" * 32, "HOME_ROOT": "/srv/ftp"},
)
django.setup()

from django.core.management import call_command, get_commands

import djftpd.admin  # noqa: F401

commands = {n for n, app in get_commands().items() if app == "djftpd"}
assert commands == {
    "startftpserver", "djftpd_check", "djftpd_prune_events", "djftpd_account", "djftpd_keys"
}, commands
call_command("check", "--fail-level", "WARNING")
call_command("migrate", verbosity=0)
import io

out = io.StringIO()
call_command("djftpd_account", "list", "--format", "json", stdout=out)
assert out.getvalue().strip() == "[]", out.getvalue()
call_command("makemigrations", "djftpd", check=True, dry_run=True, verbosity=0)
from djftpd.models import FTPAccount

print("installed", djftpd.__version__, FTPAccount.objects.count())
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(PROJECT)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def test_wheel_contents(dist: Path):
    with zipfile.ZipFile(dist / f"{NAME}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"{NAME}.dist-info/METADATA").decode()

    assert names >= IN_BOTH
    assert {name.split("/")[0] for name in names} == {"djftpd", f"{NAME}.dist-info"}
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert "Classifier: Typing :: Typed" in metadata
    assert "requires-dist: django>=4.2" in metadata.lower()
    # GPL-3.0-or-later, as djftpd 0.3; the licence text travels with the wheel.
    assert f"{NAME}.dist-info/licenses/LICENSE" in names
    assert "License-Expression: GPL-3.0-or-later" in metadata
    assert "GNU GENERAL PUBLIC LICENSE" in (PROJECT / "LICENSE").read_text(encoding="utf-8")
    for url in ("Homepage", "Source", "Issues", "Changelog"):
        assert f"Project-URL: {url}, https://github.com/djftpd/djftpd" in metadata
    assert "Author: The djftpd developers" in metadata


def test_sdist_contents(dist: Path):
    with tarfile.open(dist / f"{NAME}.tar.gz") as sdist:
        names = {name.removeprefix(f"{NAME}/") for name in sdist.getnames()}

    assert names >= IN_BOTH | SDIST_ONLY
    assert not [
        name
        for name in names
        if name.startswith((".nox", ".pytest_cache", ".ruff_cache", "dist/"))
        or "__pycache__" in name
        or name.endswith((".pyc", ".sqlite3"))
    ]


def test_wheel_installs_and_runs_alone(dist: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", str(dist / f"{NAME}-py3-none-any.whl")],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    deps = tmp_path / "deps"
    deps.mkdir()
    for module in DJANGO_DEPS:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (deps / source.name).symlink_to(source)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "django_deps.pth").write_text(f"{deps}\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "urls.py").write_text(
        textwrap.dedent("""
            from django.urls import include, path
            urlpatterns = [path("ftp/", include("djftpd.urls"))]
        """)
    )

    result = subprocess.run(
        [str(python), "-I", "-c", SMOKE, str(project)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "System check identified no issues (0 silenced).",
        f"installed {djftpd.__version__} 0",
    ]


def test_sdist_tests_run_from_the_sdist(dist: Path, tmp_path: Path):
    """The sdist's own test suite passes from the unpacked sdist alone (issue: no reads of
    ../../testdata): the shared signing vectors travel in tests/vectors/."""
    with tarfile.open(dist / f"{NAME}.tar.gz") as sdist:
        sdist.extractall(tmp_path, filter="data")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_signing.py"],
        cwd=tmp_path / NAME,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
