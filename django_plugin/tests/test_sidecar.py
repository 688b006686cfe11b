"""Running the sidecar: binary lookup, its environment, ``startftpserver`` and
``create_django_ftpserver`` (DESIGN.md section 6).

The sidecar is stood in for by real ``#!/bin/sh`` executables written to ``tmp_path``: real
processes, so environment, exit codes and signals are what the Go binary would get.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from djftpd import create_django_ftpserver
from djftpd.sidecar import Sidecar, SidecarNotFound, build_env, find_binary

PLUGIN_DIR = Path(__file__).resolve().parent.parent
PRINTED_VARS = (
    "DJFTPD_TLS_CERT",
    "DJFTPD_TLS_KEY",
    "DJFTPD_DJANGO_URL",
    "DJFTPD_SECRET",
    "DJFTPD_LISTEN",
    "DJFTPD_HOME_ROOT",
    "DJFTPD_PASSIVE_PORTS",
    "DJFTPD_PUBLIC_HOST",
    "DJFTPD_OPS_LISTEN",
    "DJFTPD_TLS_MODE",
)


def write_script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def sidecar_script(tmp_path, settings):
    """Write a stand-in sidecar, make it DJFTPD["SIDECAR_BINARY"] and return its path."""

    def make(body: str) -> str:
        path = write_script(tmp_path / "djftpd", body)
        settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_BINARY": path}
        return path

    return make


def env_printer(exit_code: int) -> str:
    lines = "".join(f'echo "{name}=${{{name}-<unset>}}"\n' for name in PRINTED_VARS)
    return f"{lines}exit {exit_code}\n"


class TestFindBinary:
    @pytest.fixture(autouse=True)
    def empty_path(self, tmp_path, monkeypatch):
        empty = tmp_path / "empty-bin"
        empty.mkdir()
        monkeypatch.setenv("PATH", str(empty))
        monkeypatch.delenv("DJFTPD_BINARY", raising=False)

    def test_setting_first(self, tmp_path, settings, monkeypatch):
        configured = write_script(tmp_path / "configured", "exit 0\n")
        monkeypatch.setenv("DJFTPD_BINARY", write_script(tmp_path / "from-env", "exit 0\n"))
        settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_BINARY": configured}

        assert find_binary() == configured

    def test_then_environment_variable(self, tmp_path, monkeypatch):
        from_env = write_script(tmp_path / "from-env", "exit 0\n")
        monkeypatch.setenv("DJFTPD_BINARY", from_env)

        assert find_binary() == from_env

    def test_then_path(self, tmp_path, monkeypatch):
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        on_path = write_script(bin_dir / "djftpd", "exit 0\n")
        monkeypatch.setenv("PATH", str(bin_dir))

        assert find_binary() == on_path

    def test_missing_binary_says_how_to_get_it(self):
        with pytest.raises(SidecarNotFound) as excinfo:
            find_binary()

        message = str(excinfo.value)
        assert "djftpd sidecar binary is not on PATH" in message
        assert "make build" in message
        assert "go install github.com/djftpd/djftpd@latest" in message

    def test_configured_path_that_is_not_executable(self, tmp_path, settings):
        not_executable = tmp_path / "djftpd"
        not_executable.write_text("")
        settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_BINARY": str(not_executable)}

        with pytest.raises(SidecarNotFound, match=r'DJFTPD\["SIDECAR_BINARY"\] is .*djftpd'):
            find_binary()


class TestBuildEnv:
    def test_from_settings_over_the_inherited_environment(self, settings):
        settings.BASE_DIR = Path("/srv/site")
        base = {"PATH": "/usr/bin", "DJFTPD_LISTEN": "stale", "DJFTPD_SECRET": "stale"}

        env = build_env(base=base)

        assert env == {
            "PATH": "/usr/bin",
            "DJFTPD_DJANGO_URL": "http://127.0.0.1:8000/ftp/",
            "DJFTPD_SECRET": settings.DJFTPD["SECRET"],
            "DJFTPD_LISTEN": "127.0.0.1:2121",
            "DJFTPD_HOME_ROOT": "/srv/ftp",
            "DJFTPD_PASSIVE_PORTS": "50000-50099",
            "DJFTPD_SPOOL_DIR": "/srv/site/.djftpd/spool",
        }

    def test_passes_only_what_the_sidecar_needs(self, settings):
        base = {
            "PATH": "/usr/bin",
            "LC_ALL": "C.UTF-8",
            "GOMEMLIMIT": "200MiB",
            "AWS_REGION": "eu-west-1",
            "DJFTPD_LOG_FORMAT": "json",
            "SECRET_KEY": "django-secret",
            "DATABASE_URL": "postgres://u:p@db/site",
            "DJANGO_SETTINGS_MODULE": "site.settings",
            "PYTHONPATH": "/srv/site",
        }

        env = build_env(base=base)

        for name in ("PATH", "LC_ALL", "GOMEMLIMIT", "AWS_REGION", "DJFTPD_LOG_FORMAT"):
            assert env[name] == base[name]
        for name in ("SECRET_KEY", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PYTHONPATH"):
            assert name not in env

    @pytest.mark.parametrize(
        ("djftpd", "base", "expected"),
        [
            ({}, {}, "/srv/site/.djftpd/spool"),
            ({"STATE_DIR": "/var/lib/site"}, {}, "/var/lib/site/spool"),
            ({"SPOOL_DIR": "/var/spool/djftpd"}, {}, "/var/spool/djftpd"),
            ({"SPOOL_DIR": ""}, {}, ""),  # events in memory only
            ({}, {"DJFTPD_SPOOL_DIR": "/inherited"}, "/inherited"),
            ({"SPOOL_DIR": "/set"}, {"DJFTPD_SPOOL_DIR": "/inherited"}, "/set"),
        ],
    )
    def test_spool_dir(self, settings, djftpd, base, expected):
        settings.BASE_DIR = Path("/srv/site")
        settings.DJFTPD = {**settings.DJFTPD, **djftpd}

        env = build_env(base=base)

        assert env["DJFTPD_SPOOL_DIR"] == expected

    def test_spool_dir_without_base_dir_is_the_xdg_state_dir(self, settings, monkeypatch):
        if hasattr(settings, "BASE_DIR"):
            del settings.BASE_DIR
        monkeypatch.setenv("XDG_STATE_HOME", "/home/u/.state")

        assert build_env(base={})["DJFTPD_SPOOL_DIR"] == "/home/u/.state/djftpd/spool"

    def test_inherits_os_environ_by_default(self, monkeypatch):
        monkeypatch.setenv("DJFTPD_LOG_FORMAT", "json")

        assert build_env()["DJFTPD_LOG_FORMAT"] == "json"

    def test_every_setting(self, settings):
        settings.DJFTPD = {
            **settings.DJFTPD,
            "DJANGO_URL": "http://django:8000/ftp/",
            "LISTEN": "[::]:21",
            "PASSIVE_PORTS": "40000-40009",
            "PUBLIC_HOST": "ftp.example.com",
            "OPS_LISTEN": "127.0.0.1:9121",
        }

        env = build_env(base={})

        assert env["DJFTPD_DJANGO_URL"] == "http://django:8000/ftp/"
        assert env["DJFTPD_LISTEN"] == "[::]:21"
        assert env["DJFTPD_PASSIVE_PORTS"] == "40000-40009"
        assert env["DJFTPD_PUBLIC_HOST"] == "ftp.example.com"
        assert env["DJFTPD_OPS_LISTEN"] == "127.0.0.1:9121"

    def test_legacy_ftp_address_and_port(self, settings):
        settings.FTP_ADDRESS = "192.0.2.1"
        settings.FTP_PORT = 2100

        assert build_env(base={})["DJFTPD_LISTEN"] == "192.0.2.1:2100"

    def test_env_setting_beats_derived_values_and_overrides_beat_everything(self, settings):
        settings.DJFTPD = {
            **settings.DJFTPD,
            "ENV": {"DJFTPD_PASSIVE_PORTS": "1000-1001", "DJFTPD_CACHE_TTL": 30},
        }

        env = build_env({"DJFTPD_CACHE_TTL": "5s"}, base={"DJFTPD_CACHE_TTL": "1s"})

        assert env["DJFTPD_PASSIVE_PORTS"] == "1000-1001"
        assert env["DJFTPD_CACHE_TTL"] == "5s"

    def test_tls_settings(self, settings):
        settings.DJFTPD = {
            **settings.DJFTPD,
            "TLS_CERT": "/etc/ftp/cert.pem",
            "TLS_KEY": "/etc/ftp/key.pem",
            "TLS_MODE": "required",
        }

        env = build_env(base={})

        assert (env["DJFTPD_TLS_CERT"], env["DJFTPD_TLS_KEY"], env["DJFTPD_TLS_MODE"]) == (
            "/etc/ftp/cert.pem", "/etc/ftp/key.pem", "required",
        )  # fmt: skip

    def test_unknown_tls_mode_is_a_configuration_error(self, settings):
        settings.DJFTPD = {**settings.DJFTPD, "TLS_MODE": "on"}

        with pytest.raises(ImproperlyConfigured, match=r'DJFTPD\["TLS_MODE"\] must be one of'):
            build_env(base={})

    def test_tls_unset_leaves_the_sidecar_defaults(self):
        env = build_env(base={})

        assert not {"DJFTPD_TLS_CERT", "DJFTPD_TLS_KEY", "DJFTPD_TLS_MODE"} & set(env)

    def test_without_home_root_the_sidecar_gets_slash(self, settings):
        settings.DJFTPD = {"SECRET": settings.DJFTPD["SECRET"]}

        assert build_env(base={})["DJFTPD_HOME_ROOT"] == "/"

    def test_without_home_root_an_inherited_one_is_kept(self, settings):
        settings.DJFTPD = {"SECRET": settings.DJFTPD["SECRET"]}

        env = build_env(base={"DJFTPD_HOME_ROOT": "/srv/other"})

        assert env["DJFTPD_HOME_ROOT"] == "/srv/other"

    def test_home_root_setting_beats_an_inherited_one(self):
        assert build_env(base={"DJFTPD_HOME_ROOT": "/srv/other"})["DJFTPD_HOME_ROOT"] == "/srv/ftp"

    def test_without_django_url_setting_an_inherited_one_beats_the_default(self):
        env = build_env(base={"DJFTPD_DJANGO_URL": "http://127.0.0.1:8123/ftp/"})

        assert env["DJFTPD_DJANGO_URL"] == "http://127.0.0.1:8123/ftp/"

    def test_django_url_setting_beats_an_inherited_one(self, settings):
        settings.DJFTPD = {**settings.DJFTPD, "DJANGO_URL": "http://django:8000/ftp/"}

        env = build_env(base={"DJFTPD_DJANGO_URL": "http://127.0.0.1:8123/ftp/"})

        assert env["DJFTPD_DJANGO_URL"] == "http://django:8000/ftp/"

    def test_bytes_secret_is_passed_as_text(self, settings):
        settings.DJFTPD = {**settings.DJFTPD, "SECRET": b"b" * 32}

        assert build_env(base={})["DJFTPD_SECRET"] == "b" * 32


class TestStartftpserver:
    def test_runs_the_sidecar_with_settings_and_options_and_exits_with_its_code(
        self, sidecar_script, capfd
    ):
        binary = sidecar_script(env_printer(exit_code=3))

        with pytest.raises(SystemExit) as excinfo:
            call_command("startftpserver", "--listen", "127.0.0.1:2999", "--public-host", "h")

        assert excinfo.value.code == 3
        out = capfd.readouterr().out
        assert f"Starting {binary} on 127.0.0.1:2999" in out
        assert "DJFTPD_LISTEN=127.0.0.1:2999\n" in out
        assert "DJFTPD_PUBLIC_HOST=h\n" in out
        assert "DJFTPD_PASSIVE_PORTS=50000-50099\n" in out
        assert "DJFTPD_HOME_ROOT=/srv/ftp\n" in out
        assert "DJFTPD_OPS_LISTEN=<unset>\n" in out

    def test_tls_options(self, sidecar_script, capfd, settings):
        sidecar_script(env_printer(exit_code=0))
        settings.DJFTPD = {**settings.DJFTPD, "TLS_MODE": "explicit", "TLS_KEY": "/s/key.pem"}

        with pytest.raises(SystemExit):
            call_command("startftpserver", "--tls-cert", "/c.pem", "--tls-mode", "required")

        out = capfd.readouterr().out
        assert "DJFTPD_TLS_CERT=/c.pem\n" in out
        assert "DJFTPD_TLS_KEY=/s/key.pem\n" in out  # from the settings
        assert "DJFTPD_TLS_MODE=required\n" in out  # the option beats the setting

    def test_unknown_tls_mode_is_a_command_error(self, sidecar_script):
        sidecar_script("exit 0\n")

        with pytest.raises(CommandError, match="invalid choice: 'tls'"):
            call_command("startftpserver", "--tls-mode", "tls")

    def test_exit_code_zero(self, sidecar_script):
        sidecar_script("exit 0\n")

        with pytest.raises(SystemExit) as excinfo:
            call_command("startftpserver", "--passive-ports", "40000-40001")

        assert excinfo.value.code == 0

    def test_sidecar_killed_by_a_signal_exits_like_a_shell(self, sidecar_script):
        sidecar_script("kill -KILL $$\n")

        with pytest.raises(SystemExit) as excinfo:
            call_command("startftpserver")

        assert excinfo.value.code == 128 + signal.SIGKILL

    def test_missing_binary_is_a_command_error(self, tmp_path, monkeypatch):
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.delenv("DJFTPD_BINARY", raising=False)

        with pytest.raises(CommandError, match=r"go install github\.com/djftpd/djftpd@latest"):
            call_command("startftpserver")

    def test_missing_binary_exits_1_from_the_command_line(self, tmp_path, monkeypatch, capsys):
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.delenv("DJFTPD_BINARY", raising=False)

        with pytest.raises(SystemExit) as excinfo:
            execute_from_command_line(["manage.py", "startftpserver"])

        assert excinfo.value.code == 1
        assert "CommandError: The djftpd sidecar binary is not on PATH" in capsys.readouterr().err


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
def test_startftpserver_forwards_signals_to_the_sidecar(tmp_path, signum):
    """A real ``manage.py startftpserver`` process: the signal it gets reaches the sidecar once,
    and the command exits with the sidecar's code."""
    name = signal.Signals(signum).name.removeprefix("SIG")
    script = write_script(
        tmp_path / "djftpd",
        f"trap 'echo got {name}; exit 7' {name}\necho ready $$\nwhile :; do sleep 0.05; done\n",
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(PLUGIN_DIR),
        "DJFTPD_BINARY": script,
    }
    command = subprocess.Popen(
        [sys.executable, "-m", "django", "startftpserver"],
        env=env,
        cwd=PLUGIN_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    sidecar_pid = None
    try:
        assert command.stdout is not None
        assert command.stdout.readline().startswith(f"Starting {script}")
        ready = command.stdout.readline()
        assert ready.startswith("ready "), ready
        sidecar_pid = int(ready.split()[1])
        command.send_signal(signum)
        out, _ = command.communicate(timeout=10)
    finally:  # the sidecar has its own process group: stop both on failure
        if command.poll() is None:
            command.kill()
            command.wait()
        if sidecar_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(sidecar_pid, signal.SIGKILL)

    assert out == f"got {name}\n"
    assert command.returncode == 7


class TestCreateDjangoFtpserver:
    def test_serve_forever_returns_the_exit_code(self, sidecar_script, capfd):
        sidecar_script(env_printer(exit_code=5))

        server = create_django_ftpserver(listen="127.0.0.1:2998", env={"DJFTPD_TLS_MODE": "off"})

        assert server.serve_forever() == 5
        out = capfd.readouterr().out
        assert "DJFTPD_LISTEN=127.0.0.1:2998\n" in out
        assert "DJFTPD_TLS_MODE=off\n" in out

    def test_close_stops_a_server_running_in_another_thread(self, sidecar_script, tmp_path):
        ready = tmp_path / "ready"
        sidecar_script(f"trap 'exit 0' TERM\ntouch {ready}\nwhile :; do sleep 0.05; done\n")
        server = create_django_ftpserver()
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(server.serve_forever()))
        thread.start()
        deadline = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

        assert server.close(timeout=10) == 0
        thread.join(10)
        assert result == [0]

    def test_close_before_start(self, sidecar_script):
        sidecar_script("exit 0\n")
        server = create_django_ftpserver()

        assert server.close() is None
        with pytest.raises(RuntimeError, match="closed"):
            server.serve_forever()

    def test_missing_binary(self, tmp_path, monkeypatch):
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.delenv("DJFTPD_BINARY", raising=False)

        with pytest.raises(SidecarNotFound):
            create_django_ftpserver()

    def test_tls_options(self, sidecar_script, capfd):
        sidecar_script(env_printer(exit_code=0))

        server = create_django_ftpserver(tls_cert="/c.pem", tls_key="/k.pem", tls_mode="implicit")

        server.serve_forever()
        out = capfd.readouterr().out
        for line in ("DJFTPD_TLS_CERT=/c.pem", "DJFTPD_TLS_KEY=/k.pem", "DJFTPD_TLS_MODE=implicit"):
            assert f"{line}\n" in out

    def test_djftpd_0_3_positional_call(self, sidecar_script):
        sidecar_script("exit 0\n")

        assert create_django_ftpserver(None, None).serve_forever() == 0

    def test_an_authorizer_is_refused_not_ignored(self, sidecar_script):
        sidecar_script("exit 0\n")

        with pytest.raises(TypeError, match="authorizer"):
            create_django_ftpserver(object())

    def test_a_handler_is_ignored_with_a_warning(self, sidecar_script):
        sidecar_script("exit 0\n")

        with pytest.warns(UserWarning, match=r"\(handler=\.\.\.\) is ignored"):
            server = create_django_ftpserver(handler=object())
        assert server.serve_forever() == 0

    def test_djftpd_0_3_standalone_script_without_django_setup(self, tmp_path):
        """Pins the 0.3 README recipe: set DJANGO_SETTINGS_MODULE, import, create, serve."""
        binary = write_script(tmp_path / "djftpd", env_printer(exit_code=4))
        script = (
            "import os, sys\n"
            "os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.settings'\n"
            "from djftpd import create_django_ftpserver\n"
            "ftpd = create_django_ftpserver()\n"
            "sys.exit(ftpd.serve_forever())\n"
        )
        env = {**os.environ, "DJFTPD_BINARY": binary, "PYTHONPATH": str(PLUGIN_DIR)}
        env.pop("DJANGO_SETTINGS_MODULE", None)

        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
        )

        assert done.returncode == 4, done.stderr
        assert "DJFTPD_LISTEN=127.0.0.1:2121\n" in done.stdout


def test_sidecar_kills_a_process_that_ignores_sigterm(tmp_path):
    ready = tmp_path / "ready"
    script = write_script(
        tmp_path / "stubborn", f"trap '' TERM\ntouch {ready}\nwhile :; do sleep 0.05; done\n"
    )
    sidecar = Sidecar({"PATH": os.environ["PATH"]}, binary=script)
    sidecar.start()
    deadline = time.monotonic() + 10
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.02)

    assert sidecar.close(timeout=0.3) == 128 + signal.SIGKILL


SIGNAL_DURING_START = """
import os, signal, sys
from djftpd.sidecar import Sidecar

sidecar = Sidecar({"PATH": os.environ["PATH"]}, binary=sys.argv[1])
with sidecar._forwarding_signals():
    with sidecar._lock:  # where start() is while Popen runs
        os.kill(os.getpid(), signal.SIGHUP)  # the handler runs here, in this thread
    sidecar.start()
    sys.exit(sidecar.wait())
"""


def test_signal_arriving_while_start_holds_the_lock_is_delivered(tmp_path):
    """Regression: a signal handled while start() held a plain Lock deadlocked the command.
    Run in a subprocess so a regression fails on the timeout instead of hanging the suite."""
    script = write_script(tmp_path / "djftpd", "trap 'exit 7' HUP\nwhile :; do sleep 0.05; done\n")

    result = subprocess.run(
        [sys.executable, "-c", SIGNAL_DURING_START, script],
        cwd=PLUGIN_DIR,
        timeout=20,
        check=False,
    )

    # 7: the trap ran; 129: SIGHUP came before the trap was set. Either way it was delivered.
    assert result.returncode in (7, 128 + signal.SIGHUP)
