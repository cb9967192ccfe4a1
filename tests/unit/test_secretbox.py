"""The secret box: AES-256-GCM, key id in every ciphertext, rotation, development key."""

from __future__ import annotations

import base64

import pytest

from modelfaucet.adapters.secretbox import (
    SecretBox,
    SecretBoxError,
    generate_key,
    key_from_text,
    key_id_of,
)
from modelfaucet.config import Settings

OLD = key_from_text(generate_key())
NEW = key_from_text(generate_key())
PLAINTEXT = "sk-test-FAKE-0123456789abcdefghijklmnop"
AAD = "provider_key:00000000-0000-0000-0000-000000000001"


def test_a_sealed_secret_opens_with_the_same_key_and_row() -> None:
    box = SecretBox(NEW)
    token = box.encrypt(PLAINTEXT, aad=AAD)
    assert box.decrypt(token, aad=AAD) == PLAINTEXT


def test_a_ciphertext_names_its_key_and_never_contains_the_plaintext() -> None:
    box = SecretBox(NEW)
    token = box.encrypt(PLAINTEXT, aad=AAD)
    version, key_id, _nonce, _sealed = token.split(":")
    assert (version, key_id) == ("v1", box.key_id)
    assert key_id_of(token) == box.key_id
    assert PLAINTEXT not in token
    assert base64.urlsafe_b64encode(PLAINTEXT.encode()).decode()[:20] not in token


def test_two_encryptions_of_the_same_secret_differ() -> None:
    box = SecretBox(NEW)
    assert box.encrypt(PLAINTEXT, aad=AAD) != box.encrypt(PLAINTEXT, aad=AAD)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1],
        lambda t: ":".join([*t.split(":")[:2], "AAAAAAAAAAAAAAAA", t.split(":")[3]]),
        lambda t: "v2" + t[2:],
        lambda t: t.rsplit(":", 1)[0],
        lambda t: "garbage",
    ],
    ids=["flipped-ciphertext", "other-nonce", "unknown-version", "truncated", "garbage"],
)
def test_a_tampered_ciphertext_is_refused(tamper: object) -> None:
    box = SecretBox(NEW)
    token = box.encrypt(PLAINTEXT, aad=AAD)
    with pytest.raises(SecretBoxError) as refused:
        box.decrypt(tamper(token), aad=AAD)  # type: ignore[operator]
    assert PLAINTEXT not in str(refused.value)


def test_a_ciphertext_moved_to_another_row_does_not_open() -> None:
    box = SecretBox(NEW)
    token = box.encrypt(PLAINTEXT, aad=AAD)
    with pytest.raises(SecretBoxError, match="authentication"):
        box.decrypt(token, aad="provider_key:someone-else")


def test_during_rotation_both_the_old_and_the_new_key_open_and_the_new_one_seals() -> None:
    old_box = SecretBox(OLD)
    sealed_under_old = old_box.encrypt(PLAINTEXT, aad=AAD)
    rotating = SecretBox(NEW, previous=[OLD])
    assert rotating.decrypt(sealed_under_old, aad=AAD) == PLAINTEXT
    assert rotating.needs_rotation(sealed_under_old)
    resealed = rotating.encrypt(PLAINTEXT, aad=AAD)
    assert key_id_of(resealed) == SecretBox(NEW).key_id
    assert not rotating.needs_rotation(resealed)


def test_a_key_that_is_not_configured_is_named_in_the_error_without_secrets() -> None:
    sealed_under_old = SecretBox(OLD).encrypt(PLAINTEXT, aad=AAD)
    with pytest.raises(SecretBoxError, match="MODELFAUCET_SECRET_KEY_PREVIOUS"):
        SecretBox(NEW).decrypt(sealed_under_old, aad=AAD)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (generate_key(), True),
        (base64.b64encode(b"k" * 32).decode(), True),
        ("a passphrase that is long enough to be stretched", True),
        ("short", False),
        ("", False),
        (base64.urlsafe_b64encode(b"k" * 16).decode(), False),
    ],
    ids=["generated", "standard-base64", "passphrase", "short", "empty", "16-bytes"],
)
def test_accepted_key_formats(text: str, ok: bool) -> None:
    if ok:
        assert len(key_from_text(text)) == 32
    else:
        with pytest.raises(SecretBoxError):
            key_from_text(text)


def test_a_generated_key_is_used_as_the_raw_aes_key() -> None:
    raw = b"\x01" * 32
    assert key_from_text(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw


def test_without_a_secret_key_development_uses_a_marked_per_database_key() -> None:
    a = SecretBox.from_settings(Settings(database_url="sqlite:///a.sqlite3"))
    b = SecretBox.from_settings(Settings(database_url="sqlite:///b.sqlite3"))
    assert a.development and a.key_id.startswith("dev-")
    assert a.key_id != b.key_id


def test_production_never_builds_a_development_key() -> None:
    with pytest.raises(SecretBoxError, match="required in production"):
        SecretBox.from_settings(Settings(environment="production"))


def test_settings_choose_the_current_and_previous_keys() -> None:
    old_text, new_text = generate_key(), generate_key()
    sealed = SecretBox.from_settings(Settings(secret_key=old_text)).encrypt(PLAINTEXT, aad=AAD)
    box = SecretBox.from_settings(Settings(secret_key=new_text, secret_key_previous=(old_text,)))
    assert box.decrypt(sealed, aad=AAD) == PLAINTEXT
    assert box.key_id == SecretBox(key_from_text(new_text)).key_id
