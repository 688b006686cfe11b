"""Alternated SFTP downloads against servers already running, with each side's CPU.

For the side measurements of bench/README.md ("SFTP downloads, round three"): start the
servers with `make bench BENCH_ARGS="--only sftp_get --reps 1 --no-vsftpd --hold"` (and any
djftpd variant on ports of its own), then

    bench/.work/venv-bench/bin/python bench/sftp_cpu.py 14 new:PID:PORT openssh:PID:PORT

Each round downloads bench/.work's big256.bin once from every server, in the order given,
with ftpbench `sftp-get` (the figures' client). Per server: the median MB/s, the server's CPU
seconds per download (utime+stime+cutime+cstime of PID from /proc: for OpenSSH, the
listener, which reaps each connection's processes when it ends) and the client's (its
rusage). The name "openssh" logs in as the bench's key user, any other as alice.
"""

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parent / ".work"
FTPBENCH = WORK / "bin" / "ftpbench"
SSH_KEY = WORK / "run" / "openssh" / "client_key"


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of pid, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / 100


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def download(name: str, port: str) -> float:
    args = [str(FTPBENCH), "sftp-get", "-addr", f"127.0.0.1:{port}", "-path", "big256.bin"]
    if name == "openssh":
        args += ["-user", "djb_sftp", "-sshkey", str(SSH_KEY)]
    else:
        args += ["-user", "alice", "-pass", "alice-password"]
    return json.loads(subprocess.check_output(args))["mbps"]


def main(rounds: int, servers: list[tuple[str, int, str]]) -> None:
    got: dict[str, dict[str, list[float]]] = {n: {"mbps": [], "server": [], "client": []}
                                              for n, _, _ in servers}
    for _ in range(rounds):
        for name, pid, port in servers:
            server0, client0 = cpu_seconds(pid), children_cpu()
            mbps = download(name, port)
            time.sleep(0.3)  # OpenSSH: the connection's processes reaped
            got[name]["mbps"].append(mbps)
            got[name]["server"].append(cpu_seconds(pid) - server0)
            got[name]["client"].append(children_cpu() - client0)
    for name, g in got.items():
        print(f"{name:10s} MB/s {statistics.median(g['mbps']):5.0f} "
              f"[{min(g['mbps']):.0f}-{max(g['mbps']):.0f}]  "
              f"server CPU s {statistics.median(g['server']):.2f}  "
              f"client CPU s {statistics.median(g['client']):.2f}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(int(sys.argv[1]), [(n, int(p), port) for n, p, port in
                            (a.split(":") for a in sys.argv[2:])])
