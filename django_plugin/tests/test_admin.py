"""The FTP activity log in the admin: browsable, never added or edited."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from djftpd.models import FTPEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def upload(alice):
    return FTPEvent.objects.create(
        id="ev-1",
        type=FTPEvent.Type.FILE_RECEIVED,
        time=datetime(2026, 11, 25, 15, 4, 5, tzinfo=timezone.utc),
        session="s-1",
        username="alice",
        user=alice,
        client_ip="192.0.2.10",
        path="/reports/q1.txt",
        bytes=13,
        duration_ms=7,
    )


@pytest.fixture
def viewer(django_user_model, client):
    """A staff member who may only view FTP events, logged in with ``client``."""
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_ftpevent"))
    client.force_login(user)
    return client


def test_changelist_filters_and_search(admin_client, upload):
    url = reverse("admin:djftpd_ftpevent_changelist")

    page = admin_client.get(url)
    found = admin_client.get(url, {"q": "q1.txt", "type__exact": "file_received"})
    missed = admin_client.get(url, {"q": "nothing-like-it"})

    assert page.status_code == 200
    assert "/reports/q1.txt" in page.content.decode()
    assert list(found.context["cl"].result_list) == [upload]
    assert list(missed.context["cl"].result_list) == []


def test_nobody_adds_or_changes_events(admin_client, upload):
    change_url = reverse("admin:djftpd_ftpevent_change", args=[upload.pk])

    assert admin_client.get(reverse("admin:djftpd_ftpevent_add")).status_code == 403
    view = admin_client.get(change_url)
    admin_client.post(change_url, {"path": "/forged"})

    assert view.status_code == 200
    assert "_save" not in view.content.decode()
    upload.refresh_from_db()
    assert upload.path == "/reports/q1.txt"


def test_superuser_may_delete(admin_client, upload):
    url = reverse("admin:djftpd_ftpevent_delete", args=[upload.pk])

    admin_client.post(url, {"post": "yes"})

    assert not FTPEvent.objects.exists()


def test_staff_with_view_permission_may_only_view(viewer, upload):
    delete_url = reverse("admin:djftpd_ftpevent_delete", args=[upload.pk])

    assert viewer.get(reverse("admin:djftpd_ftpevent_changelist")).status_code == 200
    assert viewer.post(delete_url, {"post": "yes"}).status_code == 403
    assert FTPEvent.objects.exists()


def test_staff_with_delete_permission_may_delete(viewer, django_user_model, upload):
    staff = django_user_model.objects.get(username="viewer")
    staff.user_permissions.add(Permission.objects.get(codename="delete_ftpevent"))
    delete_url = reverse("admin:djftpd_ftpevent_delete", args=[upload.pk])

    response = viewer.post(delete_url, {"post": "yes"})

    assert response.status_code == 302
    assert not FTPEvent.objects.exists()
