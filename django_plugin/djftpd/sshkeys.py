"""OpenSSH public keys: parse and validate one ``authorized_keys`` line, by hand.

The wire format is small (RFC 4253 section 6.6, RFC 5656, RFC 8709): base64 of a run of
length-prefixed strings, the first naming the key type. Parsing it here keeps djftpd free of
a cryptography dependency::

    >>> key = parse_public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB...  alice@laptop")
    >>> key.type, key.bits, key.fingerprint
    ('ssh-ed25519', 256, 'SHA256:...')

Accepted: ``ssh-ed25519``, ``ecdsa-sha2-nistp256/384/521`` (the point must lie on its curve)
and ``ssh-rsa`` of at least :data:`MIN_RSA_BITS` bits. Anything else (DSA, certificates,
security-key types, options before the type, trailing bytes) is refused with
:class:`InvalidKey`, whose message is fit for a form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

#: Smallest RSA modulus accepted, in bits.
MIN_RSA_BITS = 2048
#: Longest ``authorized_keys`` line accepted (an RSA-16384 key is about 2.8 KB).
MAX_LINE = 8192

ED25519 = "ssh-ed25519"
RSA = "ssh-rsa"

# NIST curves of RFC 5656: key type -> (curve name, field prime, b, coordinate bytes); a = -3.
_CURVES: dict[str, tuple[str, int, int, int]] = {
    "ecdsa-sha2-nistp256": (
        "nistp256",
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        32,
    ),
    "ecdsa-sha2-nistp384": (
        "nistp384",
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
        48,
    ),
    "ecdsa-sha2-nistp521": (
        "nistp521",
        2**521 - 1,
        0x0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
        66,
    ),
}

#: Key types accepted, for messages and the admin.
ACCEPTED_TYPES = (ED25519, *_CURVES, RSA)


class InvalidKey(ValueError):
    """Not an acceptable OpenSSH public key; the message says why, for the user."""


@dataclass(frozen=True)
class PublicKey:
    """A validated public key."""

    type: str
    bits: int
    blob: bytes
    comment: str

    @property
    def fingerprint(self) -> str:
        """OpenSSH's ``SHA256:`` fingerprint (``ssh-keygen -lf``)."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode()
        return "SHA256:" + digest.rstrip("=")

    @property
    def line(self) -> str:
        """The canonical ``authorized_keys`` line, without comment."""
        return f"{self.type} {base64.b64encode(self.blob).decode()}"


class _Reader:
    """Length-prefixed strings (uint32 big-endian length, then the bytes)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def string(self) -> bytes:
        if len(self.data) - self.pos < 4:
            raise InvalidKey("The key data is truncated.")
        size = int.from_bytes(self.data[self.pos : self.pos + 4], "big")
        start = self.pos + 4
        if size > len(self.data) - start:
            raise InvalidKey("The key data is truncated.")
        self.pos = start + size
        return self.data[start : self.pos]

    def mpint(self) -> int:
        raw = self.string()
        if raw and raw[0] & 0x80:
            raise InvalidKey("The key holds a negative number.")
        if len(raw) > 1 and raw[0] == 0 and not raw[1] & 0x80:
            raise InvalidKey("The key holds a badly encoded number.")
        return int.from_bytes(raw, "big")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise InvalidKey("The key data has trailing bytes.")


def parse_public_key(text: str) -> PublicKey:
    """Parse one ``authorized_keys`` line: ``TYPE BASE64 [COMMENT]``; :class:`InvalidKey`
    for anything not accepted."""
    if not isinstance(text, str):
        raise InvalidKey("The key must be text.")
    if len(text) > MAX_LINE:
        raise InvalidKey(f"The key is longer than {MAX_LINE} characters.")
    if "\x00" in text or "\n" in text.strip() or "\r" in text.strip():
        raise InvalidKey("Paste exactly one key, on one line.")
    parts = text.strip().split(None, 2)
    if len(parts) < 2:
        raise InvalidKey("Paste the whole public key line: its type, then its base64 data.")
    key_type, data = parts[0], parts[1]
    comment = parts[2] if len(parts) == 3 else ""
    if key_type not in ACCEPTED_TYPES:
        raise InvalidKey(
            f"Key type {key_type[:40]!r} is not accepted; use one of {', '.join(ACCEPTED_TYPES)}."
        )
    try:
        blob = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidKey("The key's base64 data is not valid.") from None
    reader = _Reader(blob)
    try:
        inner = reader.string().decode("ascii")
    except UnicodeDecodeError:
        raise InvalidKey("The key data names no valid type.") from None
    if inner != key_type:
        raise InvalidKey(f"The key data is of type {inner[:40]!r}, not {key_type!r}.")
    bits = _check_body(key_type, reader)
    reader.end()
    return PublicKey(type=key_type, bits=bits, blob=blob, comment=comment)


def _check_body(key_type: str, reader: _Reader) -> int:
    """Validate the fields after the type name; the key's size in bits."""
    if key_type == ED25519:
        if len(reader.string()) != 32:
            raise InvalidKey("An ed25519 key is 32 bytes.")
        return 256
    if key_type == RSA:
        exponent, modulus = reader.mpint(), reader.mpint()
        bits = modulus.bit_length()
        if exponent < 3 or exponent % 2 == 0 or modulus % 2 == 0:
            raise InvalidKey("The RSA key is not valid.")
        if bits < MIN_RSA_BITS:
            raise InvalidKey(
                f"RSA keys must have at least {MIN_RSA_BITS} bits; this one has {bits}."
            )
        return bits
    curve, prime, b, size = _CURVES[key_type]
    if reader.string() != curve.encode():
        raise InvalidKey(f"The key's curve is not {curve}.")
    point = reader.string()
    if len(point) != 1 + 2 * size or point[0] != 4:
        raise InvalidKey("The ECDSA key's point is not an uncompressed point of its curve.")
    x = int.from_bytes(point[1 : 1 + size], "big")
    y = int.from_bytes(point[1 + size :], "big")
    if x >= prime or y >= prime or (y * y - (x * x * x - 3 * x + b)) % prime:
        raise InvalidKey("The ECDSA key's point is not on its curve.")
    return {32: 256, 48: 384, 66: 521}[size]


def _enabled_keys(user: Any, line: str) -> Any:
    """The user's enabled SSHKey rows with ``line``'s fingerprint (none if it is malformed)."""
    from djftpd.models import SSHKey

    try:
        fingerprint = parse_public_key(line).fingerprint
    except InvalidKey:
        return SSHKey.objects.none()
    return SSHKey.objects.filter(user=user, fingerprint=fingerprint, enabled=True)


def user_for_key(username: str, line: str) -> Any:
    """The user named ``username`` if they hold an enabled :class:`~djftpd.models.SSHKey`
    equal to ``line`` (compared by fingerprint); else None. Whether the user may log in at
    all (active, FTP account, permission) is the caller's check, as for a password.

    No authentication backend is asked: a key login proves possession of the private key to
    the sidecar, which asks Django only whether the key belongs to the user. An offered key
    that is not the user's is a plain refusal (SSH clients offer several keys in turn).
    """
    from django.contrib.auth import get_user_model

    User = get_user_model()
    try:
        user = User._default_manager.get_by_natural_key(username)
    except (User.DoesNotExist, ValueError):
        return None
    return user if _enabled_keys(user, line).exists() else None


def mark_key_used(user: Any, line: str) -> None:
    """Set ``last_used`` of the key a granted login used."""
    from django.utils import timezone

    # update(), not save(): a save would purge the sidecar's cache on every key login.
    _enabled_keys(user, line).update(last_used=timezone.now())
