"""Django's CPU per event: signed event batches, as the sidecar sends them, into the real
events view of the demo site (issue 18, item 3). It measures; it asserts nothing.

Two ways, both on a fresh demo database (SQLite, as ``make demo`` and ``make bench``)::

    # gunicorn of the demo site (1 sync worker), CPU of its process tree from /proc/<pid>/stat
    .venv/bin/python bench/django_events.py gunicorn --sizes 1,8,64,256 --events 2048
    # in-process, through Django's test client (the whole middleware stack), process_time;
    # --profile prints the top of a cProfile of the largest batch size
    .venv/bin/python bench/django_events.py inprocess --sizes 1,8,64,256 --profile 25
    # a login storm through a real sidecar: events/s, batch sizes, Django and sidecar CPU
    .venv/bin/python bench/django_events.py storm --binary bin/djftpd --duration 10
    # another commit's app, for before/after runs
    git archive HEAD~1 django_plugin | tar -x -C /tmp/before
    .venv/bin/python bench/django_events.py gunicorn --plugin /tmp/before/django_plugin

``--receivers off`` leaves the demo app (its receiver appends a JSON line per signal to
events.log) out of INSTALLED_APPS; djftpd's own legacy bridge stays. ``--debug off`` runs
with DEBUG off, as in production (the demo keeps it on). ``--setting K=V`` sets
``DJFTPD[K]`` (a Python literal) for the run. Each session is the four events of a cached
login (connect, login, logout, disconnect), encoded like djangoclient's ``json.Marshal``
and signed like its requests (signature v2).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PLUGIN = REPO / "django_plugin"
TICK = os.sysconf("SC_CLK_TCK")
SESSION_TYPES = ("connect", "login", "logout", "disconnect")


# ---------------------------------------------------------------- batches, as the sidecar


def session_events(n_sessions: int, username: str = "alice") -> Iterator[dict[str, Any]]:
    """The events of n cached logins, in the order ftpdriver emits them."""
    for _ in range(n_sessions):
        session = secrets.token_hex(8)
        for type_ in SESSION_TYPES:
            now = datetime.now(UTC)
            yield {
                "id": secrets.token_hex(16),
                "type": type_,
                "time": now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z",  # Go: nanoseconds
                "session": session,
                "username": None if type_ == "connect" else username,
                "client_ip": "127.0.0.1",
                "path": None,
                "to_path": None,
                "bytes": None,
                "duration_ms": 3 if type_ == "disconnect" else None,
                "protocol": "ftp",
            }


def bodies(n_events: int, size: int) -> list[bytes]:
    """``{"events":[...]}`` bodies of ``size`` events each (compact, as Go writes them)."""
    events = list(session_events((n_events + 3) // 4))[:n_events]
    out = []
    for i in range(0, len(events), size):
        body = json.dumps({"events": events[i : i + size]}, separators=(",", ":")).encode()
        assert len(body) <= 64 * 1024, f"a batch of {size} is {len(body)} bytes, over 64 KiB"
        out.append(body)
    return out


def sign(body: bytes, secret: str) -> dict[str, str]:
    """The sidecar's headers: HMAC-SHA256 over "djftpd-v2|events|<ts>|<body>" (DESIGN §10)."""
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), b"djftpd-v2|events|" + ts.encode() + b"|" + body, hashlib.sha256)
    return {"X-Djftpd-Timestamp": ts, "X-Djftpd-Signature": "v2=" + mac.hexdigest()}


# ---------------------------------------------------------------- a demo site to post to


def site_env(
    plugin: Path, workdir: Path, receivers: bool, debug: bool, settings: dict[str, Any]
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJFTPD_DEMO_DIR=str(workdir),
        DJFTPD_SECRET=secrets.token_hex(32),
        DJFTPD_SIDECAR_URLS="",  # no sidecar to purge
        PYTHONPATH=os.pathsep.join([str(BENCH), str(plugin / "demo"), str(plugin)]),
        DJANGO_SETTINGS_MODULE="django_events_settings",
        BENCH_RECEIVERS="1" if receivers else "0",
        BENCH_DEBUG="1" if debug else "0",
        BENCH_DJFTPD=repr(settings),
    )
    return env


def prepare(plugin: Path, env: dict[str, str]) -> None:
    """Migrate, and create alice (no password: events only name her)."""
    subprocess.run([sys.executable, plugin / "demo" / "manage.py", "migrate", "--noinput"],
                   env=env, check=True, capture_output=True)
    code = ("import django; django.setup(); from django.contrib.auth import get_user_model; "
            "u, _ = get_user_model().objects.get_or_create(username='alice'); "
            "u.set_password('alice-password'); u.is_staff = True; u.save()")
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_ticks(pid: int) -> int:
    """utime+stime of pid and its children (gunicorn's master and workers)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def post(port: int, body: bytes, secret: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", **sign(body, secret)}
    conn.request("POST", "/ftp/events/", body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"events answer {resp.status}: {data[:200]!r}")
    answer = json.loads(data)
    if answer["rejected"]:
        raise RuntimeError(f"events rejected: {answer['rejected'][:3]}")
    return answer


def run_gunicorn(args: argparse.Namespace, env: dict[str, str]) -> list[dict[str, Any]]:
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen(
        [gunicorn, "demo.wsgi", "-b", f"127.0.0.1:{port}", "--workers", str(args.workers)],
        cwd=args.plugin / "demo", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.1)
        secret = env["DJFTPD_SECRET"]
        for body in bodies(64, 16):  # warm up: imports, first queries
            post(port, body, secret)
        rows = []
        for _ in range(args.reps):
            for size in args.sizes:
                n_events = events_for(args, size)
                batch = bodies(n_events, size)
                time.sleep(0.2)  # let the last request's after-work settle
                before, t0 = tree_ticks(proc.pid), time.monotonic()
                for body in batch:
                    post(port, body, secret)
                wall = time.monotonic() - t0
                time.sleep(0.2)
                cpu = (tree_ticks(proc.pid) - before) / TICK
                rows.append(row(size, n_events, cpu, wall))
        return rows
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def events_for(args: argparse.Namespace, size: int) -> int:
    """--events, but at least 32 requests of each size (CPU ticks are 10 ms)."""
    return max(args.events, 32 * size)


def row(size: int, events: int, cpu: float, wall: float) -> dict[str, Any]:
    return {"size": size, "events": events, "cpu_s": round(cpu, 3),
            "ms_per_event": round(cpu * 1000 / events, 4), "events_per_s": round(events / wall)}


def run_inprocess(args: argparse.Namespace, env: dict[str, str]) -> list[dict[str, Any]]:
    os.environ.update(env)
    sys.path[:0] = [str(BENCH), str(args.plugin / "demo"), str(args.plugin)]
    import django

    django.setup()
    from django.test import Client

    client, secret = Client(HTTP_HOST="127.0.0.1"), env["DJFTPD_SECRET"]

    def send(body: bytes) -> None:
        response = client.post("/ftp/events/", data=body, content_type="application/json",
                               headers=sign(body, secret))
        if response.status_code != 200 or response.json()["rejected"]:
            raise RuntimeError(f"events answer {response.status_code}: {response.content[:200]!r}")

    for body in bodies(64, 16):
        send(body)
    rows = []
    for _ in range(args.reps):
        for size in args.sizes:
            n_events = events_for(args, size)
            batch = bodies(n_events, size)
            t0, w0 = time.process_time(), time.monotonic()
            for body in batch:
                send(body)
            rows.append(row(size, n_events, time.process_time() - t0, time.monotonic() - w0))
    if args.profile:
        import cProfile
        import pstats

        batch = bodies(args.events, max(args.sizes))
        profile = cProfile.Profile()
        profile.enable()
        for body in batch:
            send(body)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.profile)
    return rows


def metrics(ops: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{ops}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#") and " " in line:
                name, value = line.rsplit(" ", 1)
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
    return out


def settle(ops: int, timeout: float = 60) -> float:
    """Waits until the sidecar's queue and spool are empty and its delivered count stands
    still."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        m = metrics(ops)
        # The spool too: a partial batch waits there up to the sidecar's flush interval.
        state = (m.get("djftpd_event_queue_depth", 0) + m.get("djftpd_event_spool_bytes", 0),
                 m.get("djftpd_events_delivered_total", 0))
        if state[0] == 0 and state == last:
            return state[1]
        last = state
        time.sleep(0.5)
    raise RuntimeError("the sidecar's event queue did not drain")


def wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


def run_storm(args: argparse.Namespace, env: dict[str, str]) -> list[dict[str, Any]]:
    """The sidecar (--binary) in front of gunicorn (2 workers, as make demo and make bench),
    cached logins from ftpbench for --duration: Django's and the sidecar's CPU, events and
    requests (gunicorn's access log)."""
    workdir = Path(env["DJFTPD_DEMO_DIR"])
    django_port, ftp_port, ops = free_port(), free_port(), free_port()
    env = {**env, "DJFTPD_DJANGO_URL": f"http://127.0.0.1:{django_port}/ftp/"}
    access = workdir / "access.log"
    (workdir / "ftp").mkdir(exist_ok=True)
    gunicorn = subprocess.Popen(
        [Path(sys.executable).parent / "gunicorn", "demo.wsgi", "-b", f"127.0.0.1:{django_port}",
         "--workers", str(args.workers), "--access-logfile", access],
        cwd=args.plugin / "demo", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    sidecar_env = {
        **env,
        "DJFTPD_HOME_ROOT": str(workdir / "ftp"),
        "DJFTPD_LISTEN": f"127.0.0.1:{ftp_port}",
        "DJFTPD_PASSIVE_PORTS": "52000-52099",
        "DJFTPD_OPS_LISTEN": f"127.0.0.1:{ops}",
        "DJFTPD_CACHE_TTL": "1h",
        "DJFTPD_MAX_CONNECTIONS": "0",
        "DJFTPD_MAX_CONNECTIONS_PER_IP": "0",
        "DJFTPD_SPOOL_DIR": str(workdir / "spool"),
    }
    sidecar = subprocess.Popen([args.binary], env=sidecar_env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_port(django_port, gunicorn, "gunicorn")
        wait_port(ops, sidecar, "the sidecar")
        bench = [str(args.ftpbench), "logins", "-addr", f"127.0.0.1:{ftp_port}",
                 "-user", "alice", "-pass", "alice-password"]
        subprocess.run([*bench, "-max", "1"], check=True, capture_output=True)  # fills the cache
        rows = []
        for _ in range(args.reps):
            delivered0 = settle(ops)
            requests0 = access.read_text().count("/ftp/events/")
            django0, sidecar0 = tree_ticks(gunicorn.pid), tree_ticks(sidecar.pid)
            load = ["-duration", f"{args.duration}s", "-rate", str(args.rate)]
            if args.workload == "smallstor":  # durable events: each upload's is fsync'd
                load = ["-n", str(args.uploads), "-conc", "4", "-size", "1024"]
            load_bench = [bench[0], args.workload, *bench[2:]]
            done = subprocess.run([*load_bench, *load], check=False, capture_output=True,
                                  text=True)
            if done.returncode:
                raise RuntimeError(f"ftpbench {args.workload}: {done.stdout} {done.stderr}")
            out = done.stdout
            result = json.loads(out.strip().splitlines()[-1])
            events = settle(ops) - delivered0
            requests = access.read_text().count("/ftp/events/") - requests0
            django = (tree_ticks(gunicorn.pid) - django0) / TICK
            side = (tree_ticks(sidecar.pid) - sidecar0) / TICK
            rows.append({
                "workload": args.workload, "rate": args.rate,
                "per_s": round(result.get("per_second") or result["uploads"] / result["seconds"]),
                "events": int(events),
                "requests": requests, "events_per_request": round(events / max(requests, 1), 1),
                "django_cpu_s": round(django, 2),
                "django_ms_per_event": round(django * 1000 / max(events, 1), 4),
                "sidecar_cpu_s": round(side, 2),
            })
        return rows
    finally:
        for proc in (sidecar, gunicorn):
            proc.terminate()
            proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["gunicorn", "inprocess", "storm"])
    parser.add_argument("--sizes", default="1,8,64,256",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--events", type=int, default=2048, help="events per batch size (at least 32 batches)")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn workers (default: 1; storm: 2, as make demo)")
    parser.add_argument("--binary", type=Path, default=REPO / "bin" / "djftpd",
                        help="storm: the sidecar binary")
    parser.add_argument("--ftpbench", type=Path, default=Path("/tmp/ftpbench"),
                        help="storm: go build -o /tmp/ftpbench ./bench/cmd/ftpbench")
    parser.add_argument("--duration", type=float, default=5, help="storm: seconds of logins")
    parser.add_argument("--workload", choices=["logins", "smallstor"], default="logins",
                        help="storm: cached logins (4 memory-first events each), or small "
                        "uploads over 4 sessions (a durable event each)")
    parser.add_argument("--uploads", type=int, default=4000, help="storm smallstor: uploads")
    parser.add_argument("--rate", type=float, default=0,
                        help="storm: logins per second at most (0: as fast as they go)")
    parser.add_argument("--receivers", choices=["on", "off"], default="on")
    parser.add_argument("--debug", choices=["on", "off"], default="on",
                        help="DEBUG of the demo site (on, as the demo runs)")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="inprocess: print the top N functions of a cProfile")
    parser.add_argument("--plugin", type=Path, default=PLUGIN,
                        help="the django_plugin tree to run (e.g. one exported from another "
                        "commit with git archive, for before/after runs)")
    parser.add_argument("--keep", action="store_true", help="keep the demo directory")
    args = parser.parse_args()
    if args.workers is None:
        args.workers = 2 if args.mode == "storm" else 1
    settings = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.setting)}
    workdir = Path(tempfile.mkdtemp(prefix="djftpd-events-"))
    try:
        env = site_env(
            args.plugin.resolve(), workdir, args.receivers == "on", args.debug == "on", settings
        )
        prepare(args.plugin.resolve(), env)
        run = {"gunicorn": run_gunicorn, "inprocess": run_inprocess, "storm": run_storm}
        rows = run[args.mode](args, env)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    load = os.getloadavg()[0]
    for r in rows:
        print(json.dumps({"mode": args.mode, "receivers": args.receivers, "debug": args.debug,
                          **settings, **r,
                          "load1": round(load, 2)}))


if __name__ == "__main__":
    main()
