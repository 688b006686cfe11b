"""djftpd: FTP accounts for Django users, served by the djftpd Go sidecar.

Install the app and mount its URLs, then start the FTP server::

    INSTALLED_APPS = [..., "djftpd"]
    DJFTPD = {"SECRET": "...", "HOME_ROOT": "/srv/ftp"}
    urlpatterns = [path("ftp/", include("djftpd.urls"))]

    $ python manage.py startftpserver

or, as with djftpd 0.3, from your own script (``django.setup()`` is not needed)::

    os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
    from djftpd import create_django_ftpserver
    server = create_django_ftpserver()
    server.serve_forever()      # blocks until the sidecar exits; server.close() stops it
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from djftpd.sidecar import Sidecar

__version__ = "1.0.0.dev0"

__all__ = ["__version__", "create_django_ftpserver"]


def create_django_ftpserver(
    authorizer: Any = None,
    handler: Any = None,
    *,
    listen: str | None = None,
    passive_ports: str | None = None,
    public_host: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_mode: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Sidecar:
    """A sidecar process configured from the Django settings, not yet started.

    The keyword arguments override the settings like ``startftpserver``'s options; ``env``
    adds or replaces sidecar environment variables. Raises ``SidecarNotFound`` when the
    binary is missing.

    ``authorizer`` and ``handler`` keep djftpd 0.3's call ``create_django_ftpserver(None,
    None)`` working. A real ``authorizer`` is refused with TypeError: logins now always go
    through ``django.contrib.auth.authenticate()`` (plus ``DJFTPD["REQUIRE_PERMISSION"]`` and
    ``FTPAccount``), and silently ignoring an authorizer that was stricter would open the
    server wider. A ``handler`` is ignored with a warning, as it was in 0.3 (which stored it
    where pyftpdlib never looked); use the ``ftp_handler`` setting or djftpd's signals.
    """
    from djftpd.sidecar import Sidecar, build_env, cli_overrides

    if authorizer is not None:
        raise TypeError(
            "create_django_ftpserver(authorizer=...) is no longer supported: djftpd "
            "authenticates with django.contrib.auth.authenticate(); restrict logins with "
            'DJFTPD["REQUIRE_PERMISSION"] or FTPAccount.enabled instead.'
        )
    if handler is not None:
        warnings.warn(
            "create_django_ftpserver(handler=...) is ignored: connect receivers to "
            "djftpd.signals, or set ftp_handler in your settings.",
            UserWarning,
            stacklevel=2,
        )
    overrides = cli_overrides(
        listen=listen,
        passive_ports=passive_ports,
        public_host=public_host,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_mode=tls_mode,
    )
    return Sidecar(build_env({**overrides, **(env or {})}))
