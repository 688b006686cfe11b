"""djftpd.storage: DJFTPD["STORAGE"] and ftp_storage(user), local and on a real S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from djftpd.sidecar import build_env
from djftpd.storage import ftp_storage, normalise_location, parse_location
from tests import s3server


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("local", ("local", "", "")),
        ("", ("local", "", "")),
        ("s3://media", ("s3", "media", "")),
        ("s3://media/ftp", ("s3", "media", "ftp")),
        ("s3://media/ftp/homes/", ("s3", "media", "ftp/homes")),
    ],
)
def test_parse_location(value, expected):
    assert parse_location(value) == expected


@pytest.mark.parametrize(
    "value",
    ["gs://media", "s3://Media", "s3://me", "s3://media/../x", "s3://media//x", "s3://m?x", "/"],
)
def test_bad_location_is_a_configuration_error(value):
    with pytest.raises(ImproperlyConfigured, match="STORAGE"):
        parse_location(value)


def test_normalised_as_the_sidecar_names_it():
    assert normalise_location("s3://media/ftp/") == "s3://media/ftp"
    assert normalise_location("local") == "local"


@pytest.fixture
def alice(db: Any) -> Any:
    return get_user_model().objects.create_user("alice", password="pw")


def test_local_home_is_a_file_system_storage(settings, tmp_path, alice):
    settings.DJFTPD = {**settings.DJFTPD, "HOME_ROOT": str(tmp_path), "STORAGE": "local"}
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "up.txt").write_text("from ftp")

    storage = ftp_storage(alice)

    assert isinstance(storage, FileSystemStorage)
    assert storage.open("up.txt").read() == b"from ftp"
    assert Path(storage.path("up.txt")) == tmp_path / "alice" / "up.txt"


def test_storage_passed_to_the_sidecar(settings):
    settings.DJFTPD = {**settings.DJFTPD, "STORAGE": "s3://media/ftp"}
    assert build_env(base={})["DJFTPD_STORAGE"] == "s3://media/ftp"


def test_unset_storage_keeps_an_inherited_one(settings):
    assert "DJFTPD_STORAGE" not in build_env(base={})
    assert build_env(base={"DJFTPD_STORAGE": "s3://x-y/z"})["DJFTPD_STORAGE"] == "s3://x-y/z"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3server.S3Server]:
    yield from s3server.start(tmp_path_factory.mktemp("versitygw"))


@pytest.fixture
def s3_env(s3: s3server.S3Server, monkeypatch: pytest.MonkeyPatch) -> s3server.S3Server:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    return s3


def test_s3_home_reads_what_was_uploaded(settings, s3_env, alice):
    """An object put where the sidecar puts alice's uploads is read through ftp_storage."""
    settings.DJFTPD = {
        **settings.DJFTPD,
        "HOME_ROOT": "/",
        "STORAGE": f"s3://{s3server.BUCKET}/ftp",
    }
    s3_env.client().put_object(Bucket=s3server.BUCKET, Key="ftp/alice/sub/up.txt", Body=b"via ftp")

    storage = ftp_storage(alice, addressing_style="path")

    assert storage.open("sub/up.txt").read() == b"via ftp"
    assert storage.listdir("") == (["sub"], [])
    assert storage.size("sub/up.txt") == 7
    storage.save("from-django.txt", ContentFile(b"site"))
    got = s3_env.client().get_object(Bucket=s3server.BUCKET, Key="ftp/alice/from-django.txt")
    assert got["Body"].read() == b"site"


def test_s3_home_takes_the_default_storage_options(settings, s3, alice):
    """The recipe: STORAGES["default"] on S3 configures ftp_storage too (endpoint, keys)."""
    settings.DJFTPD = {
        **settings.DJFTPD,
        "HOME_ROOT": "/",
        "STORAGE": f"s3://{s3server.BUCKET}/ftp",
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "site-media",
                "location": "media",
                "endpoint_url": s3.endpoint,
                "access_key": s3server.ACCESS_KEY,
                "secret_key": s3server.SECRET_KEY,
                "region_name": s3server.REGION,
                "addressing_style": "path",
            },
        },
    }
    s3.client().put_object(Bucket=s3server.BUCKET, Key="ftp/alice/recipe.txt", Body=b"r")

    storage = ftp_storage(alice)

    assert (storage.bucket_name, storage.location) == (s3server.BUCKET, "ftp/alice")
    assert storage.open("recipe.txt").read() == b"r"
