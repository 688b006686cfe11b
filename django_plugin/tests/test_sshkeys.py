"""SSH public keys for SFTP logins: parsing, the model, the key variant of the auth view, the
admin, the purge on change and ``manage.py djftpd_keys``."""

from __future__ import annotations

import base64
import contextlib
import io
import random
import struct

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from djftpd.models import FTPAccount, SSHKey
from djftpd.sshkeys import InvalidKey, parse_public_key
from tests.conftest import auth_payload, purges

# Made with ssh-keygen; the fingerprints are ssh-keygen -lf's.
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDLJqFz6jTpJoj75vQx33dXQevfztC785C/kjOCauAB+"
P256 = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBL545jEhPoSv1AmeNQe7"
    "lr1e5MePz7aI9AFRdmaEo55YFqE6r3rWany/ch+vvo5TK/uJNoY1kM2FXDTqA2wLxTc="
)
P384 = (
    "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBCLAgT6SLZuJgbYOQopz"
    "8qIFAj5ILMAk8rGtQSkiq/bssy6Z2UrtWpXPA1K8uRXuIyDwHCxKsZ68t6n4kfjMolUnVPaHEp/Zv99kIMS4cnYs/gFG"
    "DXbu44A9k4G8wCcgag=="
)
P521 = (
    "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAD7oV2x3fqMAbGcX8NW"
    "/FTI8ap4ofZvPrLS4sgkyQZC2Zi8I+V38IjDAEsaobLrkZr0s9wMP/aCQK7t77PQdL9jwwFU4C0mT5fKptcoE9XPlEn9"
    "xa21+grCbYCyE+8vs0BgIP4eQ4Z52uJSfV4DxrirGQTQYf4AWkqGhebKPIXaRyr9vw=="
)
RSA2048 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDK3JoDiX8N+Sx36eaHKzG/z/U2+eB6lW2ud6twJNF665k738fzyeiN"
    "rKbRuw3jqXNYj721amxtvE6xtoQgdI95DHnJ/SXu/42KxjIQILn0Li8lHsRIDZpj9zvnuP8UVH+TB3JWXpBMj//ksPBw"
    "7F7hg1o/C+8RodzJZueoS2AamdKJsiHTodXXepw+QKPKTWJ5efqvTHflXV86sa4jpoSwVKOdulOACUM2sCcqjNHalvdO"
    "aibj+D8usw5uFwejTEVDfxrtJ8iCyw4GNfe8oTdjoJVeNS3zw9YMmA2Fm4pR4BzcrqwnjtXReHA4VIvVgA4FhMM31uw+"
    "1YL6N1OS379D"
)
RSA1024 = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDCp28KxcZXL4LRnIEsIXe6FBjqY0ZrZMOIIxk8lFSEvEA0Lvnkd8Sd"
    "5O7mwFzeV9xcoc19aPJ+0QxClSm6wJ73cfq8WTMyR+a0vWwe31DqEoftBbP5cj4b7Dqda58DaFzhrNVF2QN2F8VMzJsK"
    "X7Dq/damH8TLXU3d40nXGFhyVQ=="
)
DSA_PREFIX = "ssh-dss AAAAB3NzaC1kc3MAAACBAKUN+Ss+s/guNIPdddf/wKdW2RPyzGOk/hOf7Y44iOTAkz8DwOE5"

VALID = [
    (ED25519, "ssh-ed25519", 256, "SHA256:XwA45j+EJ/stE/IjFPsS2w770WmEb/JzDHRobFCai6U"),
    (P256, "ecdsa-sha2-nistp256", 256, "SHA256:dZ80cQo9At1/bR/pkpuS9mhaFJ6F9DCNcRcgy3H0vZo"),
    (P384, "ecdsa-sha2-nistp384", 384, "SHA256:USFPLltFcteiee/I7NVUQU06cvl7k7SMJdTGXYAdE+U"),
    (P521, "ecdsa-sha2-nistp521", 521, "SHA256:2IB71/7aRVGqCJU/BlUAYqhfBlnjqgPSocGiqkqM2YE"),
    (RSA2048, "ssh-rsa", 2048, "SHA256:BDOrpsZ0IU6zWLL6ptZS3qncrncVnjzajgfOsA4K8V4"),
]


def ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def line(*parts: bytes, key_type: str = "ssh-ed25519") -> str:
    return f"{key_type} {base64.b64encode(b''.join(parts)).decode()}"


def blob_of(text: str) -> bytes:
    return base64.b64decode(text.split()[1])


# Parsing.


@pytest.mark.parametrize(("text", "key_type", "bits", "fingerprint"), VALID)
def test_accepted_keys_parse_like_ssh_keygen(text, key_type, bits, fingerprint):
    key = parse_public_key(f"  {text} alice@laptop home \n")

    assert (key.type, key.bits, key.fingerprint) == (key_type, bits, fingerprint)
    assert key.comment == "alice@laptop home"
    assert key.line == text


OFF_CURVE = bytearray(blob_of(P256))
OFF_CURVE[-1] ^= 1

MALFORMED = {
    "empty": "",
    "type only": "ssh-ed25519",
    "dsa": DSA_PREFIX,
    "rsa 1024 bits": RSA1024,
    "certificate": "ssh-ed25519-cert-v01@openssh.com AAAA",
    "security key": "sk-ssh-ed25519@openssh.com AAAA",
    "options before the type": f'command="ls" {ED25519}',
    "two keys": f"{ED25519}\n{ED25519}",
    "nul": f"{ED25519}\x00",
    "bad base64": "ssh-ed25519 AAAA$$$",
    "non-ascii base64": "ssh-ed25519 AAAAé",
    "type mismatch": line(ssh_string(b"ssh-rsa"), ssh_string(b"\x00" * 32)),
    "inner type not ascii": line(ssh_string(b"\xff\xfe")),
    "ed25519 short": line(ssh_string(b"ssh-ed25519"), ssh_string(b"\x01" * 31)),
    "ed25519 trailing": line(ssh_string(b"ssh-ed25519"), ssh_string(b"\x01" * 32), b"\x00"),
    "length past the end": line(ssh_string(b"ssh-ed25519"), struct.pack(">I", 2**32 - 1)),
    "truncated length": line(ssh_string(b"ssh-ed25519"), b"\x00\x00"),
    "rsa negative modulus": line(
        ssh_string(b"ssh-rsa"),
        ssh_string(b"\x01\x00\x01"),
        ssh_string(b"\x80" + b"\x01" * 300),
        key_type="ssh-rsa",
    ),
    "rsa padded number": line(
        ssh_string(b"ssh-rsa"),
        ssh_string(b"\x00\x01"),
        ssh_string(b"\x01" * 300),
        key_type="ssh-rsa",
    ),
    "rsa even exponent": line(
        ssh_string(b"ssh-rsa"), ssh_string(b"\x02"), ssh_string(b"\x41" * 300), key_type="ssh-rsa"
    ),
    "ecdsa wrong curve": line(
        ssh_string(b"ecdsa-sha2-nistp256"),
        ssh_string(b"nistp384"),
        ssh_string(b"\x04" * 65),
        key_type="ecdsa-sha2-nistp256",
    ),
    "ecdsa compressed point": line(
        ssh_string(b"ecdsa-sha2-nistp256"),
        ssh_string(b"nistp256"),
        ssh_string(b"\x02" * 33),
        key_type="ecdsa-sha2-nistp256",
    ),
    "ecdsa point off the curve": line(bytes(OFF_CURVE), key_type="ecdsa-sha2-nistp256"),
    "too long": "ssh-ed25519 " + "A" * 9000,
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_and_weak_keys_are_refused(text):
    with pytest.raises(InvalidKey):
        parse_public_key(text)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("valid", [v[0] for v in VALID], ids=[v[1] + str(v[2]) for v in VALID])
def test_fuzzed_keys_parse_or_raise_invalid_key_only(valid, seed):
    """Random flips, cuts and splices of valid keys: a key or InvalidKey, never another error."""
    rng = random.Random(seed)
    key_type, blob = valid.split()[0], bytearray(blob_of(valid))
    for _ in range(50):
        mutated = bytearray(blob)
        match rng.randrange(4):
            case 0:
                mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
            case 1:
                del mutated[rng.randrange(len(mutated)) :]
            case 2:
                mutated[rng.randrange(len(mutated))] = rng.choice([0x00, 0x7F, 0x80, 0xFF])
            case 3:
                mutated += rng.randbytes(rng.randrange(1, 8))
        with contextlib.suppress(InvalidKey):
            parse_public_key(f"{key_type} {base64.b64encode(bytes(mutated)).decode()}")


# Model.

pytestmark = pytest.mark.django_db


def test_model_derives_type_bits_and_fingerprint(alice):
    key = SSHKey.objects.create(user=alice, key=f"{RSA2048} ops@ci", label="ci")

    key.refresh_from_db()
    assert (key.type, key.bits, key.fingerprint) == VALID[4][1:]
    assert key.enabled
    assert key.last_used is None


def test_model_refuses_a_bad_key_on_save_and_in_full_clean(alice):
    with pytest.raises(ValidationError) as excinfo:
        SSHKey.objects.create(user=alice, key=RSA1024)
    assert "2048" in str(excinfo.value)
    with pytest.raises(ValidationError) as excinfo:
        SSHKey(user=alice, key=DSA_PREFIX).full_clean()
    assert "key" in excinfo.value.message_dict
    assert not SSHKey.objects.exists()


def test_the_same_key_twice_for_a_user_is_a_form_error(alice, django_user_model):
    SSHKey.objects.create(user=alice, key=ED25519)
    with pytest.raises(ValidationError) as excinfo:
        SSHKey(user=alice, key=f"{ED25519} again").full_clean()
    assert "already" in str(excinfo.value)
    bob = django_user_model.objects.create_user("bob")
    SSHKey(user=bob, key=ED25519).full_clean()  # another user may hold it


# The key variant of the auth view.

INVALID = {"ok": False, "error": "invalid_credentials"}


def key_payload(public_key: str = ED25519, **overrides):
    payload = auth_payload(protocol="sftp", public_key=public_key, **overrides)
    del payload["password"]
    return payload


def test_key_login_gets_the_same_grant_as_a_password_login(alice, post_auth, assert_signed):
    SSHKey.objects.create(user=alice, key=ED25519)
    by_password = post_auth(auth_payload(protocol="sftp"))

    by_key = post_auth(key_payload(f"{ED25519} comment ignored"))

    assert by_key.status_code == 200
    assert by_key.json() == by_password.json()
    assert_signed(by_key)
    assert SSHKey.objects.get().last_used is not None


@pytest.mark.parametrize(
    "case", ["other key", "disabled", "other user", "unknown user", "malformed", "inactive"]
)
def test_key_refusals_are_the_uniform_401(case, alice, django_user_model, post_auth):
    key = SSHKey.objects.create(user=alice, key=ED25519)
    payload = key_payload()
    if case == "other key":
        payload = key_payload(P256)
    elif case == "disabled":
        SSHKey.objects.filter(pk=key.pk).update(enabled=False)
    elif case == "other user":
        django_user_model.objects.create_user("bob")
        payload = key_payload(username="bob")
    elif case == "unknown user":
        payload = key_payload(username="mallory")
    elif case == "malformed":
        payload = key_payload("ssh-ed25519 AAAA")
    elif case == "inactive":
        alice.is_active = False
        alice.save()

    response = post_auth(payload)

    assert (response.status_code, response.json()) == (401, INVALID)
    assert SSHKey.objects.get().last_used is None


def test_key_login_follows_the_ftp_account_rules(alice, post_auth):
    SSHKey.objects.create(user=alice, key=ED25519)
    FTPAccount.objects.create(user=alice, enabled=False)

    assert post_auth(key_payload()).status_code == 401


@pytest.mark.parametrize("fields", [{"password", "public_key"}, set()])
def test_exactly_one_of_password_and_public_key(fields, alice, post_auth):
    payload = auth_payload(protocol="sftp", public_key=ED25519)
    for name in {"password", "public_key"} - fields:
        del payload[name]

    response = post_auth(payload)

    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_password_login_over_sftp(alice, post_auth):
    assert post_auth(auth_payload(protocol="sftp")).status_code == 200


def test_non_string_public_key_is_a_bad_request(alice, post_auth):
    assert post_auth(key_payload(public_key=["x"])).status_code == 400


# Purge.


def test_key_save_and_delete_purge_but_a_login_does_not(
    alice, sidecar, sidecar_urls, committed, post_auth
):
    with committed():
        key = SSHKey.objects.create(user=alice, key=ED25519)
    with committed():
        assert post_auth(key_payload()).status_code == 200
    with committed():
        key.delete()

    assert [body for _, body in purges(sidecar)] == [{"username": "alice"}] * 4


# Admin.


def test_admin_shows_keys_inline_on_the_user_and_fingerprints_on_the_account(admin_client, alice):
    key = SSHKey.objects.create(user=alice, key=ED25519, label="laptop")
    account = FTPAccount.objects.create(user=alice)

    user_page = admin_client.get(reverse("admin:auth_user_change", args=[alice.pk]))
    account_page = admin_client.get(reverse("admin:djftpd_ftpaccount_change", args=[account.pk]))
    key_page = admin_client.get(reverse("admin:djftpd_sshkey_change", args=[key.pk]))

    for page in (user_page, account_page, key_page):
        assert page.status_code == 200
        assert key.fingerprint in page.content.decode()


def test_admin_refuses_a_weak_key_with_a_form_error(admin_client, alice):
    response = admin_client.post(
        reverse("admin:djftpd_sshkey_add"),
        {"user": alice.pk, "label": "old", "key": RSA1024, "enabled": "on"},
    )

    assert response.status_code == 200
    assert "at least 2048 bits" in response.content.decode()
    assert not SSHKey.objects.exists()


# manage.py djftpd_keys.


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("djftpd_keys", *args, stdout=out)
    return out.getvalue()


def test_keys_command_add_list_remove(alice, tmp_path, monkeypatch):
    keys = tmp_path / "keys.pub"
    keys.write_text(f"# two keys\n{ED25519} alice@laptop\n\n{P256}\n")

    added = run("add", "alice", str(keys))
    listed = run("list", "alice")
    monkeypatch.setattr("sys.stdin", io.StringIO(P256))
    removed = run("remove", "alice", "-")
    fingerprint = VALID[0][3]
    removed_by_fingerprint = run("remove", "alice", fingerprint)

    assert added.count("Added") == 2
    assert fingerprint in added
    assert f"{fingerprint} ssh-ed25519 256 enabled never used alice@laptop" in listed
    assert "Removed 1 key" in removed
    assert "Removed 1 key" in removed_by_fingerprint
    assert not SSHKey.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "mallory", "-"), "No user"),
        (("add", "alice", "/dev/null"), "No public key"),
        (("add", "alice", "/nonexistent"), "Cannot read"),
        (("remove", "alice", "SHA256:nope"), "No matching key"),
    ],
)
def test_keys_command_errors(alice, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_keys_command_adds_nothing_when_a_line_is_bad(alice, tmp_path):
    keys = tmp_path / "keys.pub"
    keys.write_text(f"{ED25519}\n{RSA1024}\n")

    with pytest.raises(CommandError, match="line 2"):
        run("add", "alice", str(keys))
    assert not SSHKey.objects.exists()


def test_keys_command_remove_all(alice):
    SSHKey.objects.create(user=alice, key=ED25519)
    SSHKey.objects.create(user=alice, key=P384)

    assert "Removed 2" in run("remove", "alice", "--all")
