"""djftpd: FTP accounts for Django users, served by the djftpd Go sidecar.

Install the app and mount its URLs, then start the FTP server::

    INSTALLED_APPS = [..., "djftpd"]
    DJFTPD = {"SECRET": "...", "HOME_ROOT": "/srv/ftp"}
    urlpatterns = [path("ftp/", include("djftpd.urls"))]

    $ python manage.py startftpserver

or, as with djftpd 0.3, from your own script::

    from djftpd import create_django_ftpserver
    server = create_django_ftpserver()
    server.serve_forever()      # blocks until the sidecar exits; server.close() stops it
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from djftpd.sidecar import Sidecar

__version__ = "1.0.0.dev0"

__all__ = ["__version__", "create_django_ftpserver"]


def create_django_ftpserver(
    *,
    listen: str | None = None,
    passive_ports: str | None = None,
    public_host: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Sidecar:
    """A sidecar process configured from the Django settings, not yet started.

    The keyword arguments override the settings like ``startftpserver``'s options; ``env``
    adds or replaces sidecar environment variables. Raises ``SidecarNotFound`` when the
    binary is missing.
    """
    from djftpd.sidecar import Sidecar, build_env, cli_overrides

    overrides = cli_overrides(listen=listen, passive_ports=passive_ports, public_host=public_host)
    return Sidecar(build_env({**overrides, **(env or {})}))
