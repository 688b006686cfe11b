"""Where the sidecar keeps FTP homes, as a Django ``Storage``.

``DJFTPD["STORAGE"]`` is the sidecar's ``DJFTPD_STORAGE``: ``"local"`` (directories on disk)
or ``"s3://BUCKET[/PREFIX]"`` (a home ``/alice`` is the keys ``PREFIX/alice/...``)::

    from djftpd.storage import ftp_storage

    storage = ftp_storage(user)          # rooted at the user's FTP home
    with storage.open("report.csv") as f:
        ...

Local homes give a ``FileSystemStorage``; S3 homes give django-storages' ``S3Storage``
(``pip install "djftpd[s3]"``), configured like ``STORAGES["default"]`` when that is an
``S3Storage`` too (same endpoint, credentials, addressing style), else from boto3's own
chain: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
``AWS_ENDPOINT_URL_S3``, ... as the sidecar reads them.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, Storage

from djftpd.conf import app_settings
from djftpd.policy import resolve_home

#: Options of STORAGES["default"] not carried over: they name another place.
_PLACE_OPTIONS = ("bucket_name", "location")


def parse_location(value: str) -> tuple[str, str, str]:
    """``("local", "", "")`` or ``("s3", bucket, prefix)`` for a ``DJFTPD["STORAGE"]`` value;
    the same syntax and refusals as the sidecar's ``DJFTPD_STORAGE``."""
    if value in ("", "local"):
        return "local", "", ""
    parts = urlsplit(value)
    prefix = parts.path.removeprefix("/").removesuffix("/")
    elements = prefix.split("/") if prefix else []
    bucket = parts.netloc
    if (
        parts.scheme != "s3"
        or not 3 <= len(bucket) <= 63
        or any(c not in "abcdefghijklmnopqrstuvwxyz0123456789.-" for c in bucket)
        or parts.query
        or parts.fragment
        or any(e in ("", ".", "..") or "\\" in e or "\0" in e for e in elements)
    ):
        raise ImproperlyConfigured(
            f'DJFTPD["STORAGE"] must be "local" or "s3://BUCKET[/PREFIX]", got {value!r}.'
        )
    return "s3", bucket, prefix


def normalise_location(value: str) -> str:
    """``value`` as the sidecar names it in its ``/ping`` answer."""
    kind, bucket, prefix = parse_location(value)
    if kind == "local":
        return "local"
    return "s3://" + posixpath.join(bucket, prefix) if prefix else f"s3://{bucket}"


def ftp_storage(user: Any, **options: Any) -> Storage:
    """A Django ``Storage`` rooted at ``user``'s FTP home; ``options`` go to its constructor."""
    kind, bucket, prefix = parse_location(str(app_settings.STORAGE))
    home = resolve_home(user)
    if kind == "local":
        return FileSystemStorage(location=home, **options)
    try:
        from storages.backends.s3 import S3Storage  # an optional extra
    except ImportError:
        raise ImproperlyConfigured(
            'DJFTPD["STORAGE"] is on S3: install django-storages and boto3 ("djftpd[s3]").'
        ) from None
    location = posixpath.join(prefix, home.lstrip("/")).strip("/")
    kwargs = {**default_s3_options(), "bucket_name": bucket, "location": location, **options}
    return S3Storage(**kwargs)


def default_s3_options() -> dict[str, Any]:
    """The OPTIONS of ``STORAGES["default"]`` when it is django-storages' S3 backend (the
    recipe: FTP homes in the site's own bucket), without those naming a bucket or location."""
    default = (getattr(settings, "STORAGES", None) or {}).get("default") or {}
    backend = str(default.get("BACKEND", ""))
    if not backend.startswith("storages.backends.s3"):
        return {}
    opts = dict(default.get("OPTIONS") or {})
    for name in _PLACE_OPTIONS:
        opts.pop(name, None)
    return opts
