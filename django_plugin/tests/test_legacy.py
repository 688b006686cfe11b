"""The djftpd 0.3 ftp_handler bridge (DESIGN.md sections 2 and 6)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.checks import Warning, run_checks

from djftpd.checks import Codes, Hints, Messages
from djftpd.legacy import filesystem_path
from tests.test_events import event

pytestmark = pytest.mark.django_db

#: Hook calls seen by the handlers below: (hook, self.username, argument(s)).
calls: list[tuple[Any, ...]] = []


class Handler:
    """Shaped like a pyftpdlib FTPHandler subclass of djftpd 0.3 days: no usable __init__."""

    def __init__(self, conn: Any, server: Any) -> None:
        raise AssertionError("djftpd must not instantiate the handler class")

    def on_login(self, username: str) -> None:
        calls.append(("on_login", self.username, username))

    def on_logout(self, username: str) -> None:
        calls.append(("on_logout", self.username, username))

    def on_login_failed(self, username: str, password: str | None) -> None:
        calls.append(("on_login_failed", username, password))

    def on_file_sent(self, file: str) -> None:
        calls.append(("on_file_sent", self.remote_ip, file))

    def on_file_received(self, file: str) -> None:
        calls.append(("on_file_received", self.username, file))

    def on_incomplete_file_sent(self, file: str) -> None:
        calls.append(("on_incomplete_file_sent", self.username, file))

    def on_incomplete_file_received(self, file: str) -> None:
        calls.append(("on_incomplete_file_received", self.username, file))


class OldLoginFailed:
    """An instance handler whose on_login_failed takes the username only."""

    def on_login_failed(self, username: str) -> None:
        calls.append(("on_login_failed", username))


@pytest.fixture(autouse=True)
def clear_calls():
    calls.clear()


@pytest.fixture
def post_events(post_signed, django_capture_on_commit_callbacks):
    def post(*items: dict[str, Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            response = post_signed("djftpd:events", {"events": list(items)})
        assert response.status_code == 200
        return response

    return post


NO_PATH = {"path": None, "bytes": None, "duration_ms": None}


def test_handler_class_hooks_get_username_and_absolute_paths(alice, post_events, set_legacy):
    set_legacy("ftp_handler", Handler)

    post_events(
        event(type="connect", username=None, **NO_PATH),
        event(type="login", **NO_PATH),
        event(type="file_received", path="/reports/q1.txt"),
        event(type="file_sent", path="/"),
        event(type="incomplete_file_sent", path="/big.iso"),
        event(type="incomplete_file_received", path="/part"),
        event(type="file_deleted", path="/reports/q1.txt"),
        event(type="file_renamed", path="/a", to_path="/b"),
        event(type="directory_created", path="/d"),
        event(type="directory_deleted", path="/d"),
        event(type="logout", **NO_PATH),
        event(type="disconnect", username="alice", **NO_PATH),
    )

    assert calls == [
        ("on_login", "alice", "alice"),
        ("on_file_received", "alice", "/srv/ftp/alice/reports/q1.txt"),
        ("on_file_sent", "192.0.2.10", "/srv/ftp/alice"),
        ("on_incomplete_file_sent", "alice", "/srv/ftp/alice/big.iso"),
        ("on_incomplete_file_received", "alice", "/srv/ftp/alice/part"),
        ("on_logout", "alice", "alice"),
    ]


def test_login_failed_never_gets_a_password(post_events, set_legacy):
    set_legacy("ftp_handler", Handler)

    post_events(event(type="login_failed", username="mallory", **NO_PATH))

    assert calls == [("on_login_failed", "mallory", None)]


def test_handler_instance_and_one_argument_login_failed(post_events, set_legacy):
    set_legacy("ftp_handler", OldLoginFailed())

    post_events(
        event(type="login_failed", username="mallory", **NO_PATH),
        event(type="login", username="mallory", **NO_PATH),  # no on_login: nothing happens
    )

    assert calls == [("on_login_failed", "mallory")]


def test_dotted_path(alice, post_events, settings):
    settings.FTP_HANDLER = "tests.test_legacy.Handler"

    post_events(event(type="login", **NO_PATH))

    assert calls == [("on_login", "alice", "alice")]


def test_without_the_setting_nothing_is_called(alice, post_events):
    post_events(event(type="login", **NO_PATH))

    assert calls == []


def test_a_raising_hook_is_logged_and_the_batch_still_accepted(
    alice, post_events, set_legacy, caplog
):
    class Broken:
        def on_login(self, username: str) -> None:
            raise ValueError("old handler bug")

        def on_logout(self, username: str) -> None:
            calls.append(("on_logout", username))

    set_legacy("ftp_handler", Broken())

    with caplog.at_level(logging.ERROR, logger="djftpd"):
        post_events(event(type="login", **NO_PATH), event(type="logout", **NO_PATH))

    assert calls == [("on_logout", "alice")]
    assert any(isinstance(r.exc_info[1], ValueError) for r in caplog.records if r.exc_info)


def test_path_of_a_user_without_home_is_the_ftp_path(settings, django_user_model):
    settings.DJFTPD = {"SECRET": settings.DJFTPD["SECRET"]}  # no HOME_ROOT: no home
    user = django_user_model(username="alice")

    assert filesystem_path(user, "/a/b.txt") == "/a/b.txt"
    assert filesystem_path(None, "/a/b.txt") == "/a/b.txt"


def test_path_cannot_leave_the_home(django_user_model):
    user = django_user_model(username="alice")

    assert filesystem_path(user, "/../../etc/passwd") == "/srv/ftp/alice/etc/passwd"


def test_w001_for_ftp_handler_names_the_signals(set_legacy):
    set_legacy("ftp_handler", Handler)

    warnings = [m for m in run_checks() if m.id == Codes.LEGACY_SETTING]

    assert warnings == [
        Warning(
            Messages.LEGACY_SETTING.format(name="ftp_handler"),
            hint=Hints.LEGACY_FTP_HANDLER,
            id=Codes.LEGACY_SETTING,
        )
    ]


class ConnectHandler:
    """pyftpdlib's on_connect/on_disconnect take no argument but self."""

    def on_connect(self) -> None:
        calls.append(("on_connect", self.username, self.remote_ip))

    def on_disconnect(self) -> None:
        calls.append(("on_disconnect", self.username, self.remote_ip))


def test_on_connect_and_on_disconnect(alice, post_events, set_legacy):
    set_legacy("ftp_handler", ConnectHandler)

    post_events(
        event(type="connect", username=None, **NO_PATH),
        event(type="disconnect", **NO_PATH),
    )

    assert calls == [
        ("on_connect", None, "192.0.2.10"),
        ("on_disconnect", "alice", "192.0.2.10"),
    ]


class FTPHandler:
    """Stands for pyftpdlib.handlers.FTPHandler: its own defaults are nobody's choice."""

    __module__ = "pyftpdlib.handlers"
    passive_ports = None
    banner = "pyftpdlib ready."
    timeout = 300


class ConfiguredHandler(FTPHandler):
    passive_ports = range(60000, 60100)
    masquerade_address = "203.0.113.7"
    timeout = 60

    def on_login(self, username: str) -> None:
        pass


def test_w012_names_each_ignored_handler_attribute_once(set_legacy):
    set_legacy("ftp_handler", ConfiguredHandler)

    warnings = [m for m in run_checks() if m.id == Codes.LEGACY_HANDLER_ATTRIBUTE]

    assert [m.msg for m in warnings] == [
        Messages.LEGACY_HANDLER_ATTRIBUTE.format(name=name)
        for name in ("passive_ports", "masquerade_address", "timeout")
    ]
    assert warnings[0].hint == 'Use DJFTPD["PASSIVE_PORTS"] (a "first-last" range) instead.'


def test_w012_instance_attributes_count_too(set_legacy):
    handler = ConnectHandler()
    handler.banner = "Hello"

    set_legacy("ftp_handler", handler)

    assert [m.msg for m in run_checks() if m.id == Codes.LEGACY_HANDLER_ATTRIBUTE] == [
        Messages.LEGACY_HANDLER_ATTRIBUTE.format(name="banner")
    ]


def test_w012_silent_for_a_handler_with_hooks_only(set_legacy):
    set_legacy("ftp_handler", Handler)

    assert [m for m in run_checks() if m.id == Codes.LEGACY_HANDLER_ATTRIBUTE] == []
