"""Cache purge push to the sidecars' ops listeners (DESIGN.md section 2), against a real local
HTTP server that records what it receives (the ``sidecar`` fixture)."""

from __future__ import annotations

import logging
import time

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from djftpd import sidecar_client
from djftpd.models import FTPAccount
from djftpd.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.conftest import purges

pytestmark = pytest.mark.django_db


def test_password_change_purges_the_user_at_every_sidecar(
    alice, sidecar, sidecar_urls, committed, secret
):
    with committed():
        alice.set_password("new")
        alice.save()

    assert purges(sidecar) == [
        ("/a/cache/purge", {"username": "alice"}),
        ("/b/cache/purge", {"username": "alice"}),
    ]
    for (_, body), headers in zip(sidecar.requests, sidecar.headers, strict=True):
        verify(
            body["raw"],
            headers[TIMESTAMP_HEADER],
            headers[SIGNATURE_HEADER],
            secret,
            purpose="cache-purge",
        )


def test_nothing_is_sent_before_commit(
    alice, sidecar, sidecar_urls, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alice.set_password("new")
        alice.save()

    assert (len(callbacks), sidecar.requests) == (1, [])


def test_rolled_back_change_purges_nothing(alice, sidecar, sidecar_urls, committed):
    def deactivate_then_fail() -> None:
        with transaction.atomic():
            alice.is_active = False
            alice.save()
            raise RuntimeError("rollback")

    with committed(), pytest.raises(RuntimeError, match="rollback"):
        deactivate_then_fail()

    assert sidecar.requests == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda u: setattr(u, "is_active", False), id="deactivated"),
        pytest.param(lambda u: u.set_password("other"), id="password"),
    ],
)
def test_watched_fields_purge(alice, sidecar, sidecar_urls, committed, change):
    with committed():
        change(alice)
        alice.save()

    assert {body["username"] for _, body in purges(sidecar)} == {"alice"}


def test_other_changes_and_last_login_do_not_purge(alice, sidecar, sidecar_urls, committed):
    with committed():
        alice.first_name = "Alice"
        alice.save()
        alice.save(update_fields=["last_login"])
        alice.is_active = False
        alice.save(update_fields=["first_name"])  # is_active not written: nothing changes

    assert sidecar.requests == []


def test_new_user_purges_nothing(django_user_model, sidecar, sidecar_urls, committed):
    with committed():
        django_user_model.objects.create_user("carol", password="x")

    assert sidecar.requests == []


def test_username_change_purges_old_and_new_names(alice, sidecar, sidecar_urls, committed):
    with committed():
        alice.username = "alicia"
        alice.save()

    assert sorted(body["username"] for _, body in purges(sidecar)[::2]) == ["alice", "alicia"]


def test_deleted_user_is_purged(alice, sidecar, sidecar_urls, committed):
    with committed():
        alice.delete()

    assert {body["username"] for _, body in purges(sidecar)} == {"alice"}


def test_ftp_account_save_and_delete_purge(alice, sidecar, sidecar_urls, committed):
    with committed():
        account = FTPAccount.objects.create(user=alice, perms="elr")
    with committed():
        account.delete()

    assert [body for _, body in purges(sidecar)] == [{"username": "alice"}] * 4


def test_user_groups_and_permissions_purge_the_user(alice, sidecar, sidecar_urls, committed):
    group = Group.objects.create(name="ftp")
    with committed():
        alice.groups.add(group)
        alice.user_permissions.add(Permission.objects.get(codename="use_ftp"))

    assert [body for _, body in purges(sidecar)] == [{"username": "alice"}] * 4


def test_group_side_changes_purge_everyone(alice, sidecar, sidecar_urls, committed):
    group = Group.objects.create(name="ftp")
    with committed():
        group.permissions.add(Permission.objects.get(codename="use_ftp"))
        group.user_set.add(alice)

    assert [body for _, body in purges(sidecar)] == [{"all": True}] * 4


@pytest.mark.parametrize("empty", [[], "", None])
def test_with_empty_sidecar_urls_nothing_is_scheduled(
    alice, sidecar, settings, django_capture_on_commit_callbacks, empty
):
    settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_URLS": empty}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        alice.set_password("new")
        alice.save()

    assert (callbacks, sidecar.requests) == ([], [])


def test_without_sidecar_urls_user_save_queries_nothing_more(
    alice, settings, django_assert_num_queries
):
    settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_URLS": []}
    alice.set_password("new")

    with django_assert_num_queries(1):  # the UPDATE; no read of the old row
        alice.save()


def test_without_sidecar_urls_the_local_sidecar_is_purged(alice, sidecar, settings, committed):
    """Issue 12 item 6: SIDECAR_URLS defaulted to [], so a project that did not set it never
    purged and a changed password kept working over FTP for the cache TTL (and the stale
    hour). The default is now the ops listener that startftpserver starts."""
    port = sidecar.url.rsplit(":", 1)[1].rstrip("/")
    settings.DJFTPD = {**settings.DJFTPD, "OPS_LISTEN": f"127.0.0.1:{port}"}
    assert "SIDECAR_URLS" not in settings.DJFTPD

    with committed():
        alice.set_password("new")
        alice.save()

    assert purges(sidecar) == [("/cache/purge", {"username": "alice"})]


@pytest.mark.parametrize(
    ("djftpd", "env", "urls"),
    [
        ({}, {}, ["http://127.0.0.1:9121/"]),
        ({"OPS_LISTEN": "127.0.0.1:9200"}, {}, ["http://127.0.0.1:9200/"]),
        ({"OPS_LISTEN": "0.0.0.0:9200"}, {}, ["http://127.0.0.1:9200/"]),
        ({"OPS_LISTEN": ":9200"}, {}, ["http://127.0.0.1:9200/"]),
        ({"OPS_LISTEN": "[::]:9200"}, {}, ["http://[::1]:9200/"]),
        ({"OPS_LISTEN": "[::1]:9200"}, {}, ["http://[::1]:9200/"]),
        ({"OPS_LISTEN": "ops.internal:9200"}, {}, ["http://ops.internal:9200/"]),
        ({}, {"DJFTPD_OPS_LISTEN": "127.0.0.1:9300"}, ["http://127.0.0.1:9300/"]),
        ({"ENV": {"DJFTPD_OPS_LISTEN": "127.0.0.1:9400"}, "OPS_LISTEN": "127.0.0.1:9200"}, {},
         ["http://127.0.0.1:9400/"]),
        ({"OPS_LISTEN": "127.0.0.1:0"}, {}, []),
        ({"OPS_LISTEN": "no port"}, {}, []),
        ({"SIDECAR_URLS": ["http://10.0.0.7:9121/"]}, {}, ["http://10.0.0.7:9121/"]),
    ],
    ids=["default", "OPS_LISTEN", "any IPv4", "no host", "any IPv6", "IPv6", "name",
         "environment", "ENV wins", "port 0", "junk", "explicit"],
)  # fmt: skip
def test_default_sidecar_urls_follow_the_ops_listen_of_startftpserver(
    settings, monkeypatch, djftpd, env, urls
):
    """The same address startftpserver gives the sidecar as DJFTPD_OPS_LISTEN (the
    environment, then OPS_LISTEN, then ENV), reached on loopback when it listens on all
    addresses; none when no port can be known."""
    monkeypatch.delenv("DJFTPD_OPS_LISTEN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.DJFTPD = {"SECRET": settings.DJFTPD["SECRET"], **djftpd}

    assert sidecar_client.sidecar_urls() == urls


def test_refusal_is_logged_not_raised(alice, sidecar, sidecar_urls, committed, caplog):
    sidecar.status = 403

    with caplog.at_level(logging.ERROR, logger="djftpd"), committed():
        alice.set_password("new")
        alice.save()

    assert len(sidecar.requests) == 2
    assert [r.levelno for r in caplog.records if r.name == "djftpd"] == [logging.ERROR] * 2
    assert "answered 403" in caplog.records[0].getMessage()


def test_unreachable_sidecar_is_logged_not_raised(alice, settings, committed, caplog):
    settings.DJFTPD = {**settings.DJFTPD, "SIDECAR_URLS": "http://127.0.0.1:9/"}

    with caplog.at_level(logging.WARNING, logger="djftpd"), committed():
        alice.delete()

    [record] = [r for r in caplog.records if r.name == "djftpd"]
    assert "failed" in record.getMessage()


def test_slow_sidecar_times_out(alice, sidecar, sidecar_urls, committed, caplog, monkeypatch):
    monkeypatch.setattr(sidecar_client, "PURGE_TIMEOUT", 0.2)
    sidecar.delay = 1.0
    started = time.monotonic()

    with caplog.at_level(logging.WARNING, logger="djftpd"), committed():
        alice.delete()

    assert time.monotonic() - started < 1.5
    assert all("timed out" in r.getMessage() for r in caplog.records if r.name == "djftpd")


def test_missing_secret_is_logged(alice, settings, sidecar, committed, caplog):
    settings.DJFTPD = {"SIDECAR_URLS": [sidecar.url]}

    with caplog.at_level(logging.ERROR, logger="djftpd"), committed():
        alice.delete()

    assert sidecar.requests == []
    assert "SECRET" in caplog.records[-1].getMessage()
