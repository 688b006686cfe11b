"""Signing and verification (signature v2, DESIGN.md section 10), pinned to the vectors the Go
side tests too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from djftpd.signing import (
    MAX_SKEW,
    PURPOSES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    StaleTimestamp,
    sign,
    verify,
)


def shared_vector(name: str) -> dict:
    """A test vector shared with the Go tests: the repository's testdata/ in a checkout, the
    copy the sdist build puts in tests/vectors/ in an unpacked sdist."""
    here = Path(__file__).parent
    for candidate in (here / "vectors" / name, here.parent.parent / "testdata" / name):
        if candidate.exists():
            return json.loads(candidate.read_text(encoding="utf-8"))
    raise FileNotFoundError(f"shared test vector {name} (testdata/ or tests/vectors/)")


VECTOR = shared_vector("signing_vector.json")


def test_sign_reproduces_the_shared_vector():
    body = VECTOR["body"].encode("utf-8")

    headers = sign(body, VECTOR["secret"], timestamp=VECTOR["timestamp"], purpose=VECTOR["purpose"])

    assert headers == {
        TIMESTAMP_HEADER: VECTOR["timestamp"],
        SIGNATURE_HEADER: VECTOR["signature"],
    }


def test_verify_accepts_the_shared_vector():
    body = VECTOR["body"].encode("utf-8")
    now = int(VECTOR["timestamp"])

    verify(
        body,
        VECTOR["timestamp"],
        VECTOR["signature"],
        VECTOR["secret"],
        purpose=VECTOR["purpose"],
        now=now,
    )


ANSWER_VECTOR = shared_vector("answer_signing_vector.json")


def test_sign_answer_reproduces_the_shared_vector():
    body = ANSWER_VECTOR["body"].encode("utf-8")

    headers = sign(
        body,
        ANSWER_VECTOR["secret"],
        timestamp=ANSWER_VECTOR["timestamp"],
        purpose=ANSWER_VECTOR["purpose"],
        request_signature=ANSWER_VECTOR["request_signature"],
    )

    assert headers[SIGNATURE_HEADER] == ANSWER_VECTOR["signature"]


def test_answer_signature_is_bound_to_its_request():
    body = ANSWER_VECTOR["body"].encode("utf-8")
    now = int(ANSWER_VECTOR["timestamp"])
    args = (body, ANSWER_VECTOR["timestamp"], ANSWER_VECTOR["signature"], ANSWER_VECTOR["secret"])
    kwargs = {"now": now, "purpose": ANSWER_VECTOR["purpose"]}

    verify(*args, **kwargs, request_signature=ANSWER_VECTOR["request_signature"])
    with pytest.raises(SignatureError):
        verify(*args, **kwargs, request_signature="v2=" + "0" * 64)
    with pytest.raises(SignatureError):
        verify(*args, **kwargs, request_signature=ANSWER_VECTOR["request_signature"][3:])
    with pytest.raises(SignatureError):
        verify(*args, **kwargs)


def test_verify_accepts_a_bytes_secret():
    body = VECTOR["body"].encode("utf-8")
    secret = VECTOR["secret"].encode()

    verify(
        body,
        VECTOR["timestamp"],
        VECTOR["signature"],
        secret,
        purpose="auth",
        now=int(VECTOR["timestamp"]),
    )


def test_sign_defaults_to_now():
    headers = sign(b"{}", "k" * 32, purpose="ping")

    verify(b"{}", headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], "k" * 32, purpose="ping")


@pytest.mark.parametrize(
    ("body", "timestamp", "signature"),
    [
        pytest.param(VECTOR["body"].encode() + b" ", None, None, id="body changed"),
        pytest.param(None, "1700000001", None, id="timestamp changed"),
        pytest.param(None, None, VECTOR["signature"].upper(), id="uppercase hex"),
        pytest.param(None, None, VECTOR["signature"].replace("v2=", "v1="), id="version 1"),
        pytest.param(None, None, VECTOR["signature"].replace("v2=", "v3="), id="other version"),
        pytest.param(None, None, VECTOR["signature"][3:], id="no version prefix"),
        pytest.param(None, "", None, id="no timestamp"),
        pytest.param(None, None, "", id="no signature"),
        pytest.param(None, " 1700000000", None, id="padded timestamp"),
    ],
)
def test_verify_rejects(body, timestamp, signature):
    with pytest.raises(SignatureError) as excinfo:
        verify(
            VECTOR["body"].encode() if body is None else body,
            VECTOR["timestamp"] if timestamp is None else timestamp,
            VECTOR["signature"] if signature is None else signature,
            VECTOR["secret"],
            purpose="auth",
            now=int(VECTOR["timestamp"]),
        )

    assert excinfo.type is SignatureError


@pytest.mark.parametrize("skew", [MAX_SKEW + 1, -MAX_SKEW - 1])
def test_verify_rejects_a_stale_timestamp_only_after_the_signature(skew):
    now = int(VECTOR["timestamp"]) + skew
    body = VECTOR["body"].encode()

    args = (body, VECTOR["timestamp"])

    with pytest.raises(StaleTimestamp):
        verify(*args, VECTOR["signature"], VECTOR["secret"], purpose="auth", now=now)
    with pytest.raises(SignatureError) as excinfo:
        verify(*args, "v2=" + "0" * 64, VECTOR["secret"], purpose="auth", now=now)
    assert excinfo.type is SignatureError


@pytest.mark.parametrize("skew", [MAX_SKEW, -MAX_SKEW])
def test_verify_accepts_the_edge_of_the_window(skew):
    now = int(VECTOR["timestamp"]) + skew

    verify(
        VECTOR["body"].encode(),
        VECTOR["timestamp"],
        VECTOR["signature"],
        VECTOR["secret"],
        purpose="auth",
        now=now,
    )


# Every kind of signed message: a request or an answer, for each purpose.
KINDS = [(purpose, answer) for purpose in PURPOSES for answer in (False, True)]


def _kind_id(kind: tuple[str, bool]) -> str:
    return kind[0] + ("-answer" if kind[1] else "")


@pytest.mark.parametrize("signed_as", KINDS, ids=_kind_id)
@pytest.mark.parametrize("verified_as", KINDS, ids=_kind_id)
def test_no_signed_kind_verifies_as_another(signed_as, verified_as):
    """A purge must not pass for a ping, an auth answer for an events answer, an answer for a
    request: replaying any kind as another (same body, time and request) is refused."""
    secret, body, ts = VECTOR["secret"], b'{"username":"alice"}', VECTOR["timestamp"]
    request_signature = VECTOR["signature"]

    def reqsig(kind: tuple[str, bool]) -> str | None:
        return request_signature if kind[1] else None

    sig = sign(body, secret, ts, purpose=signed_as[0], request_signature=reqsig(signed_as))[
        SIGNATURE_HEADER
    ]

    def check() -> None:
        verify(
            body,
            ts,
            sig,
            secret,
            purpose=verified_as[0],
            request_signature=reqsig(verified_as),
            now=int(ts),
        )

    if signed_as == verified_as:
        check()
    else:
        with pytest.raises(SignatureError):
            check()


@pytest.mark.parametrize("purpose", ["", "auth-answer", "AUTH", "auth|x"])
def test_unknown_purpose_is_refused(purpose):
    with pytest.raises(ValueError, match="purpose"):
        sign(b"{}", "k" * 32, purpose=purpose)
    with pytest.raises(ValueError, match="purpose"):
        verify(b"{}", "1", "v2=" + "0" * 64, "k" * 32, purpose=purpose)
