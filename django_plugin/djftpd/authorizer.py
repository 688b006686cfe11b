"""djftpd 0.3's module, kept so its scripts run unchanged::

    from djftpd.authorizer import create_django_ftpserver   # 0.3; DeprecationWarning
    from djftpd import create_django_ftpserver              # now

Only ``create_django_ftpserver`` is kept: 0.3's pyftpdlib authorizer has no place beside the
sidecar, which authenticates every login through ``django.contrib.auth.authenticate()``.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["create_django_ftpserver"]  # noqa: F822  (served by __getattr__)


def __getattr__(name: str) -> Any:
    # Warn on use, not on import: the warning then points at the importing line, which
    # Python's default filters show when it is the script being run.
    if name == "create_django_ftpserver":
        warnings.warn(
            "djftpd.authorizer is deprecated: use "
            "'from djftpd import create_django_ftpserver' instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        from djftpd import create_django_ftpserver

        return create_django_ftpserver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
