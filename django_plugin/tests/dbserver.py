"""Run a command beside a throwaway PostgreSQL or MariaDB server::

    python tests/dbserver.py postgresql -- pytest -q
    python tests/dbserver.py mariadb -- sh -c 'pytest -q && pytest -q --ds tests.settings_axes'

The server gets a fresh data directory in a temporary directory, a unix socket there and a free
port on 127.0.0.1; the command sees it as ``DJFTPD_TEST_DB`` (``postgresql://...`` or
``mysql://...``, read by ``tests/settings.py``). The server is stopped and its directory
removed when the command ends; the exit status is the command's.

Durability is switched off (fsync, doublewrite): the data is thrown away anyway. PostgreSQL
refuses to run as root, so under root it runs as the ``postgres`` user; MariaDB runs as
whoever we are.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

#: Seconds a server may take to accept connections.
START_TIMEOUT = 60.0
DATABASE = "djftpd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(name: str, *patterns: str) -> str:
    """``name`` on PATH, else the newest match of ``patterns`` (Debian keeps PostgreSQL's
    server binaries in /usr/lib/postgresql/<version>/bin)."""
    found = shutil.which(name)
    if found:
        return found
    matches = sorted(match for pattern in patterns for match in glob.glob(pattern))
    if not matches:
        sys.exit(f"dbserver: {name} not found (install the database server package)")
    return matches[-1]


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            sys.exit(f"dbserver: the server exited ({process.returncode}):\n{log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    sys.exit(f"dbserver: the server did not listen on 127.0.0.1:{port}:\n{log.read_text()}")


def run_quiet(command: list[str], log: Path) -> None:
    with log.open("ab") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode:
        logs = "".join(p.read_text(errors="replace") for p in sorted(log.parent.glob("*.log")))
        sys.exit(f"dbserver: {' '.join(command)} failed:\n{logs}")


@contextlib.contextmanager
def postgresql(tmp: Path) -> Iterator[str]:
    """A PostgreSQL cluster owned by the ``postgres`` user when we are root."""
    bindirs = ("/usr/lib/postgresql/*/bin/{}",)
    initdb = find_binary("initdb", *(d.format("initdb") for d in bindirs))
    pg_ctl = find_binary("pg_ctl", *(d.format("pg_ctl") for d in bindirs))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    # The server writes its own log (as postgres); ours is for initdb's and pg_ctl's output.
    data, sockets = tmp / "data", tmp / "sockets"
    log, server_log = tmp / "setup.log", tmp / "pg.log"
    run_quiet([*as_owner, "mkdir", str(sockets)], log)
    run_quiet(
        [*as_owner, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--locale=C", "--no-sync"],
        log,
    )  # fmt: skip
    port = free_port()
    options = (
        f"-k {sockets} -h 127.0.0.1 -p {port} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off"
    )
    start = [*as_owner, pg_ctl, "-D", str(data), "-l", str(server_log), "-w", "-o", options]
    run_quiet([*start, "start"], log)
    try:
        wait_for_port(port, None, server_log)
        yield f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
    finally:
        run_quiet([*as_owner, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], log)


@contextlib.contextmanager
def mariadb(tmp: Path) -> Iterator[str]:
    """A MariaDB server whose root has no password, reachable on 127.0.0.1 only."""
    install_db = find_binary("mariadb-install-db")
    mariadbd = find_binary("mariadbd", "/usr/sbin/mariadbd")
    data, log = tmp / "data", tmp / "server.log"
    user = ["--user=root"] if os.geteuid() == 0 else []
    run_quiet(
        [install_db, "--no-defaults", f"--datadir={data}", *user, "--skip-test-db",
         "--auth-root-authentication-method=normal", "--skip-name-resolve"],
        log,
    )  # fmt: skip
    port = free_port()
    command = [
        mariadbd, "--no-defaults", f"--datadir={data}", *user, f"--socket={tmp / 'mysqld.sock'}",
        f"--pid-file={tmp / 'mysqld.pid'}", f"--log-error={log}", "--bind-address=127.0.0.1",
        f"--port={port}", "--skip-name-resolve", "--skip-log-bin",
        "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
        "--innodb-buffer-pool-size=64M", "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, log)
        load_time_zones(tmp / "mysqld.sock", log)
        yield f"mysql://root@127.0.0.1:{port}/{DATABASE}"
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def load_time_zones(sock: Path, log: Path) -> None:
    """Fill the server's time zone tables, as Django's MySQL notes ask (the admin's date
    hierarchy and the ``__date`` lookups use CONVERT_TZ)."""
    tzinfo = find_binary("mariadb-tzinfo-to-sql", "/usr/bin/mysql_tzinfo_to_sql")
    client = find_binary("mariadb", "/usr/bin/mysql")
    sql = subprocess.run([tzinfo, "/usr/share/zoneinfo"], capture_output=True, check=True).stdout
    with log.open("ab") as out:
        subprocess.run(
            [client, "--no-defaults", f"--socket={sock}", "-uroot", "mysql"],
            input=sql, stdout=out, stderr=subprocess.STDOUT, check=True,
        )  # fmt: skip


SERVERS = {"postgresql": postgresql, "mariadb": mariadb}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", choices=sorted(SERVERS))
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is required")
    with (
        tempfile.TemporaryDirectory(prefix=f"djftpd-{args.server}-") as tmp,
        SERVERS[args.server](Path(tmp)) as url,
    ):
        print(f"dbserver: {args.server} at {url}", file=sys.stderr, flush=True)
        env = {**os.environ, "DJFTPD_TEST_DB": url}
        return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
