"""Signing and verification (DESIGN.md section 2), pinned to the vector the Go side tests too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from djftpd.signing import (
    MAX_SKEW,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    StaleTimestamp,
    sign,
    verify,
)

VECTOR = json.loads(
    (Path(__file__).parent / "../../testdata/signing_vector.json").read_text(encoding="utf-8")
)


def test_sign_reproduces_the_shared_vector():
    body = VECTOR["body"].encode("utf-8")

    headers = sign(body, VECTOR["secret"], timestamp=VECTOR["timestamp"])

    assert headers == {
        TIMESTAMP_HEADER: VECTOR["timestamp"],
        SIGNATURE_HEADER: VECTOR["signature"],
    }


def test_verify_accepts_the_shared_vector():
    body = VECTOR["body"].encode("utf-8")
    now = int(VECTOR["timestamp"])

    verify(body, VECTOR["timestamp"], VECTOR["signature"], VECTOR["secret"], now=now)


ANSWER_VECTOR = json.loads(
    (Path(__file__).parent / "../../testdata/answer_signing_vector.json").read_text(
        encoding="utf-8"
    )
)


def test_sign_answer_reproduces_the_shared_vector():
    body = ANSWER_VECTOR["body"].encode("utf-8")

    headers = sign(
        body,
        ANSWER_VECTOR["secret"],
        timestamp=ANSWER_VECTOR["timestamp"],
        request_signature=ANSWER_VECTOR["request_signature"],
    )

    assert headers[SIGNATURE_HEADER] == ANSWER_VECTOR["signature"]


def test_answer_signature_is_bound_to_its_request():
    body = ANSWER_VECTOR["body"].encode("utf-8")
    now = int(ANSWER_VECTOR["timestamp"])
    args = (body, ANSWER_VECTOR["timestamp"], ANSWER_VECTOR["signature"], ANSWER_VECTOR["secret"])

    verify(*args, now=now, request_signature=ANSWER_VECTOR["request_signature"])
    with pytest.raises(SignatureError):
        verify(*args, now=now, request_signature="v1=" + "0" * 64)
    with pytest.raises(SignatureError):
        verify(*args, now=now)


def test_verify_accepts_a_bytes_secret():
    body = VECTOR["body"].encode("utf-8")
    secret = VECTOR["secret"].encode()

    verify(body, VECTOR["timestamp"], VECTOR["signature"], secret, now=int(VECTOR["timestamp"]))


def test_sign_defaults_to_now():
    headers = sign(b"{}", "k" * 32)

    verify(b"{}", headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], "k" * 32)


@pytest.mark.parametrize(
    ("body", "timestamp", "signature"),
    [
        pytest.param(VECTOR["body"].encode() + b" ", None, None, id="body changed"),
        pytest.param(None, "1700000001", None, id="timestamp changed"),
        pytest.param(None, None, VECTOR["signature"].upper(), id="uppercase hex"),
        pytest.param(None, None, VECTOR["signature"].replace("v1=", "v2="), id="other version"),
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
            now=int(VECTOR["timestamp"]),
        )

    assert excinfo.type is SignatureError


@pytest.mark.parametrize("skew", [MAX_SKEW + 1, -MAX_SKEW - 1])
def test_verify_rejects_a_stale_timestamp_only_after_the_signature(skew):
    now = int(VECTOR["timestamp"]) + skew
    body = VECTOR["body"].encode()

    with pytest.raises(StaleTimestamp):
        verify(body, VECTOR["timestamp"], VECTOR["signature"], VECTOR["secret"], now=now)
    with pytest.raises(SignatureError) as excinfo:
        verify(body, VECTOR["timestamp"], "v1=" + "0" * 64, VECTOR["secret"], now=now)
    assert excinfo.type is SignatureError


@pytest.mark.parametrize("skew", [MAX_SKEW, -MAX_SKEW])
def test_verify_accepts_the_edge_of_the_window(skew):
    now = int(VECTOR["timestamp"]) + skew

    verify(
        VECTOR["body"].encode(), VECTOR["timestamp"], VECTOR["signature"], VECTOR["secret"], now=now
    )
