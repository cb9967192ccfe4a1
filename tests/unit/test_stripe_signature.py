"""Stripe-Signature verification over the raw bytes (SPEC §6), as a table of cases."""

from __future__ import annotations

import json

import pytest

from modelfaucet.adapters.stripe.signature import (
    SignatureError,
    compute,
    secrets_from_setting,
    sign,
    verify,
)

SECRET = "whsec_test_local"
OLD_SECRET = "whsec_test_previous"
NOW = 1_700_000_000
TOLERANCE = 300
BODY = json.dumps({"id": "evt_1", "type": "checkout.session.completed"}, separators=(",", ":")).encode()


def v1(secret: str, timestamp: int = NOW, body: bytes = BODY) -> str:
    return compute(body, secret, timestamp)


ACCEPTED = [
    ("a valid signature", f"t={NOW},v1={v1(SECRET)}", [SECRET]),
    (
        "a timestamp just inside the tolerance in the past",
        f"t={NOW - TOLERANCE},v1={v1(SECRET, NOW - TOLERANCE)}",
        [SECRET],
    ),
    (
        "a timestamp just inside the tolerance in the future",
        f"t={NOW + TOLERANCE},v1={v1(SECRET, NOW + TOLERANCE)}",
        [SECRET],
    ),
    ("several v1 values of which the second matches", f"t={NOW},v1={'0' * 64},v1={v1(SECRET)}", [SECRET]),
    (
        "a v1 for the old secret while the new one is configured first",
        f"t={NOW},v1={v1(OLD_SECRET)}",
        [SECRET, OLD_SECRET],
    ),
    ("an unknown v0 scheme next to a valid v1", f"t={NOW},v0=abc,v1={v1(SECRET)}", [SECRET]),
    ("spaces after the commas", f"t={NOW}, v1={v1(SECRET)}", [SECRET]),
]

# The signed timestamp in other scripts' digits: int() reads both as NOW, the contract does not.
ARABIC_NOW = str(NOW).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
FULL_WIDTH_NOW = str(NOW).translate(str.maketrans("0123456789", "０１２３４５６７８９"))

REFUSED = [
    ("a signature made with the wrong secret", f"t={NOW},v1={v1('whsec_wrong')}", [SECRET], "matches"),
    ("a missing header", None, [SECRET], "missing"),
    ("an empty header", "", [SECRET], "missing"),
    ("a stale timestamp", f"t={NOW - TOLERANCE - 1},v1={v1(SECRET, NOW - TOLERANCE - 1)}", [SECRET], "tolerance"),
    ("a future timestamp", f"t={NOW + TOLERANCE + 1},v1={v1(SECRET, NOW + TOLERANCE + 1)}", [SECRET], "tolerance"),
    ("a header without a timestamp", f"v1={v1(SECRET)}", [SECRET], "timestamp"),
    ("a non-numeric timestamp", f"t=soon,v1={v1(SECRET)}", [SECRET], "malformed"),
    ("a superscript-digit timestamp", "t=²,v1=00", [SECRET], "malformed"),
    ("a timestamp ending in a superscript digit", f"t={NOW}²,v1={v1(SECRET)}", [SECRET], "malformed"),
    ("an Arabic-Indic-digit timestamp", f"t={ARABIC_NOW},v1={v1(SECRET)}", [SECRET], "malformed"),
    ("a full-width-digit timestamp", f"t={FULL_WIDTH_NOW},v1={v1(SECRET)}", [SECRET], "malformed"),
    ("a non-ASCII v1 value", f"t={NOW},v1=٠٠", [SECRET], "matches"),
    ("a header without v1", f"t={NOW},v0={v1(SECRET)}", [SECRET], "no v1"),
    ("a signature of another timestamp", f"t={NOW},v1={v1(SECRET, NOW - 1)}", [SECRET], "matches"),
    ("a rotated-out secret no longer configured", f"t={NOW},v1={v1(OLD_SECRET)}", [SECRET], "matches"),
    ("no configured secret at all", f"t={NOW},v1={v1(SECRET)}", [], "configured"),
]


@pytest.mark.parametrize(("case", "header", "secrets"), ACCEPTED, ids=[row[0] for row in ACCEPTED])
def test_signature_is_accepted_for(case: str, header: str, secrets: list[str]) -> None:
    verify(BODY, header, secrets, now=NOW, tolerance_seconds=TOLERANCE)


@pytest.mark.parametrize(("case", "header", "secrets", "reason"), REFUSED, ids=[row[0] for row in REFUSED])
def test_signature_is_refused_for(case: str, header: str | None, secrets: list[str], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(BODY, header, secrets, now=NOW, tolerance_seconds=TOLERANCE)


def test_a_body_reserialised_differently_from_what_was_signed_is_refused() -> None:
    header = sign(BODY, SECRET, NOW)
    same_json_other_bytes = json.dumps(json.loads(BODY), indent=2).encode()
    assert json.loads(same_json_other_bytes) == json.loads(BODY)
    with pytest.raises(SignatureError):
        verify(same_json_other_bytes, header, [SECRET], now=NOW, tolerance_seconds=TOLERANCE)


def test_sign_produces_a_header_that_verifies() -> None:
    assert verify(BODY, sign(BODY, SECRET, NOW), [SECRET], now=NOW, tolerance_seconds=TOLERANCE) == NOW


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert compute(BODY, SECRET, NOW) == expected


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (None, []),
        ("", []),
        ("whsec_a", ["whsec_a"]),
        ("whsec_new, whsec_old", ["whsec_new", "whsec_old"]),
    ],
)
def test_the_webhook_secret_setting_may_list_several_secrets(setting: str | None, expected: list[str]) -> None:
    assert secrets_from_setting(setting) == expected
