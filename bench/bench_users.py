"""Creates the benchmark's users in a Django project, idempotently:

    DJANGO_SETTINGS_MODULE=... python bench_users.py COUNT [--ftpserver-home-root DIR]

alice / alice-password (superuser) and bob / bob-password as in the djftpd demo, plus
u0000 ... u{COUNT-1} with password "bench-password" hashed by Django's default hasher. The
u-users share one hash (one salt): creating them costs one hash, but verifying each still
costs a full PBKDF2, which is what the uncached-login figures measure. Prints the
hasher, its iterations and the time of one check_password.

With --ftpserver-home-root it also creates django-ftpserver's FTP groups and accounts
(homes DIR/{username}, created here: pyftpdlib needs them to exist).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.getcwd())

import django

django.setup()

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, get_hasher, make_password

UPASS = "bench-password"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("count", type=int)
    p.add_argument("--ftpserver-home-root")
    a = p.parse_args()
    User = get_user_model()
    for name, pw, admin in (("alice", "alice-password", True), ("bob", "bob-password", False)):
        u, _ = User.objects.get_or_create(username=name)
        u.is_active = True
        u.is_staff = u.is_superuser = admin
        u.set_password(pw)
        u.save()
    shared = make_password(UPASS)
    names = [f"u{i:04d}" for i in range(a.count)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    User.objects.bulk_create(
        [User(username=n, password=shared, is_active=True) for n in names if n not in existing]
    )
    User.objects.filter(username__in=names).update(password=shared)

    if a.ftpserver_home_root:
        from django_ftpserver.models import FTPUserAccount, FTPUserGroup

        root = a.ftpserver_home_root
        rw, _ = FTPUserGroup.objects.update_or_create(
            name="rw", defaults={"permission": "elradfmw", "home_dir": root + "/{username}"}
        )
        ro, _ = FTPUserGroup.objects.update_or_create(
            name="ro", defaults={"permission": "elr", "home_dir": root + "/{username}"}
        )
        for u in User.objects.filter(username__in=["alice", "bob", *names]):
            FTPUserAccount.objects.update_or_create(
                user=u, defaults={"group": rw if u.username == "alice" else ro}
            )
            os.makedirs(os.path.join(root, u.username), exist_ok=True)

    hasher = get_hasher()
    t = time.perf_counter()
    assert check_password(UPASS, shared)
    one = time.perf_counter() - t
    print(json.dumps({"hasher": hasher.algorithm, "iterations": getattr(hasher, "iterations", None),
                      "check_password_s": round(one, 4), "users": a.count + 2}))


if __name__ == "__main__":
    main()
