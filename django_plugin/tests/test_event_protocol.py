"""Events carry the protocol (DESIGN.md section 10): optional on the wire, a signal kwarg."""

from __future__ import annotations

import pytest

from tests.test_events import event, post_events, received  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("protocol", ["ftp", "ftps", "sftp", None])
def test_protocol_reaches_the_signal(alice, post_events, received, protocol):  # noqa: F811
    response = post_events(event(type="login", protocol=protocol))

    assert response.status_code == 200
    assert [kwargs["protocol"] for _, kwargs in received] == [protocol]


@pytest.mark.parametrize("protocol", ["scp", 3, ""])
def test_unknown_protocol_rejects_the_event(alice, post_events, received, protocol):  # noqa: F811
    bad = event(protocol=protocol)
    response = post_events(bad)

    assert response.status_code == 200
    [rejected] = response.json()["rejected"]
    assert rejected["id"] == bad["id"]
    assert "protocol" in rejected["error"]
    assert received == []
