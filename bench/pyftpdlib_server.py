"""pyftpdlib 2.x peer of the benchmark: in-memory users (DummyAuthorizer), sendfile on.

    python pyftpdlib_server.py --port 2122 --passive 31000-31099 --home-root DIR \
        [--certfile C --keyfile K]

alice (elradfmwMT) and bob (elr) as in the djftpd demo; homes DIR/alice, DIR/bob. With a
certificate it serves explicit FTPS (AUTH TLS optional, like djftpd's "explicit" mode).
"""

from __future__ import annotations

import argparse
import logging
import os

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.servers import FTPServer

USERS = {"alice": ("alice-password", "elradfmwMT"), "bob": ("bob-password", "elr")}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--passive", required=True)
    p.add_argument("--home-root", required=True)
    p.add_argument("--certfile")
    p.add_argument("--keyfile")
    a = p.parse_args()

    auth = DummyAuthorizer()
    for name, (pw, perm) in USERS.items():
        home = os.path.join(a.home_root, name)
        os.makedirs(home, exist_ok=True)
        auth.add_user(name, pw, home, perm=perm)

    if a.certfile:
        from pyftpdlib.handlers import TLS_FTPHandler as Handler

        Handler.certfile = a.certfile
        Handler.keyfile = a.keyfile
    else:
        from pyftpdlib.handlers import FTPHandler as Handler
    Handler.authorizer = auth
    lo, hi = (int(x) for x in a.passive.split("-"))
    Handler.passive_ports = range(lo, hi + 1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # backlog 1024 (default 100) so the 300-at-once figure measures the server, not SYN
    # retries; max_cons 10,500 (default 512) for the 10,000 idle sessions (idle10k; the
    # run raises RLIMIT_NOFILE, which every server inherits).
    server = FTPServer(("127.0.0.1", a.port), Handler, backlog=1024)
    server.max_cons = 10_500
    server.max_cons_per_ip = 0
    server.serve_forever()


if __name__ == "__main__":
    main()
