"""The secret box: AES-256-GCM encryption of provider keys at rest, with key rotation.

Key format (``MODELFAUCET_SECRET_KEY`` and each comma-separated entry of
``MODELFAUCET_SECRET_KEY_PREVIOUS``):

- the base64url (or standard base64) encoding of exactly 32 random bytes is used as the
  AES-256 key itself — generate one with ``modelfaucet secrets generate-key``;
- anything else of at least 32 characters is treated as a passphrase and stretched to 32
  bytes with HKDF-SHA256 (fixed salt and info). A passphrase is only as strong as its
  entropy, so prefer a generated key.

Each ciphertext names the key that sealed it: ``v1:<key_id>:<nonce>:<ciphertext>`` (nonce
and ciphertext in unpadded base64url; the GCM tag is part of the ciphertext). The key id is
derived from the key (the first 16 hex digits of an HMAC of it), so it identifies the key
without revealing it and needs no separate configuration. Decryption accepts the current
key and every previous key, which is what lets ``modelfaucet secrets rotate`` re-encrypt
rows batch by batch while the service keeps reading both.

A caller passes *associated data* naming the row a secret belongs to (e.g.
``provider_key:<id>``) so a ciphertext copied onto another row does not decrypt.

Development without a key: a **development key** is derived from a fixed, public string
and the database URL. Its key id starts with ``dev-`` so such rows are recognisable; it
protects nothing and exists only so a laptop works out of the box. Production refuses to
start without ``MODELFAUCET_SECRET_KEY`` (see ``config.py``) and this module refuses to
build a development box in production as a second line of defence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import Settings

VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
MIN_PASSPHRASE_CHARS = 32
_HKDF_SALT = b"modelfaucet/secretbox/v1"
_HKDF_INFO = b"provider-key-encryption"
_DEV_SEED = b"modelfaucet-INSECURE-development-key-never-use-in-production"


class SecretBoxError(Exception):
    """A ciphertext cannot be opened (unknown key, tampered, malformed) or a key is invalid.

    The message never contains the key or the plaintext.
    """


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def generate_key() -> str:
    """A fresh random key in the accepted format (base64url of 32 bytes)."""
    return _b64encode(os.urandom(KEY_BYTES))


def key_from_text(text: str) -> bytes:
    """Turn a configured key (see the module docs for the format) into 32 key bytes."""
    candidate = text.strip()
    if not candidate:
        raise SecretBoxError("the secret key is empty")
    for decode in (_b64decode, lambda value: base64.b64decode(value + "=" * (-len(value) % 4))):
        try:
            raw = decode(candidate)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == KEY_BYTES:
            return raw
    if len(candidate) < MIN_PASSPHRASE_CHARS:
        raise SecretBoxError(
            "the secret key must be base64url of 32 bytes or a passphrase of at least "
            f"{MIN_PASSPHRASE_CHARS} characters"
        )
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        candidate.encode("utf-8")
    )


def key_id_for(key: bytes, *, prefix: str = "k") -> str:
    digest = hmac.new(key, b"modelfaucet/secretbox/key-id", hashlib.sha256).hexdigest()
    return f"{prefix}{digest[:16]}"


def development_key(database_url: str) -> bytes:
    """The public, per-database development key (development mode only)."""
    return hashlib.sha256(_DEV_SEED + b"\0" + database_url.encode("utf-8")).digest()


@dataclass(frozen=True)
class _Key:
    key_id: str
    aead: AESGCM


class SecretBox:
    """Seals with the current key; opens with the current or any previous key."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = (), *, development: bool = False) -> None:
        for key in (current, *previous):
            if len(key) != KEY_BYTES:
                raise SecretBoxError("AES-256-GCM keys are 32 bytes")
        self.development = development
        self._current = _Key(key_id_for(current, prefix="dev-" if development else "k"), AESGCM(current))
        self._keys: dict[str, _Key] = {self._current.key_id: self._current}
        for key in previous:
            entry = _Key(key_id_for(key), AESGCM(key))
            self._keys.setdefault(entry.key_id, entry)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        previous = [key_from_text(text) for text in settings.secret_key_previous]
        if settings.secret_key:
            return cls(key_from_text(settings.secret_key), previous)
        if settings.production:
            raise SecretBoxError("MODELFAUCET_SECRET_KEY is required in production")
        return cls(development_key(settings.database_url), previous, development=True)

    @property
    def key_id(self) -> str:
        """The id of the key new ciphertexts are sealed with."""
        return self._current.key_id

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def encrypt(self, plaintext: str, *, aad: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._current.aead.encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
        return f"{VERSION}:{self._current.key_id}:{_b64encode(nonce)}:{_b64encode(sealed)}"

    def decrypt(self, token: str, *, aad: str) -> str:
        _version, key_id, nonce, sealed = self._split(token)
        key = self._keys.get(key_id)
        if key is None:
            raise SecretBoxError(f"no configured key has id {key_id}; set MODELFAUCET_SECRET_KEY_PREVIOUS")
        try:
            plain = key.aead.decrypt(nonce, sealed, aad.encode("utf-8"))
        except InvalidTag:
            raise SecretBoxError("the ciphertext failed authentication (tampered or moved)") from None
        return plain.decode("utf-8")

    def needs_rotation(self, token: str) -> bool:
        return key_id_of(token) != self._current.key_id

    @staticmethod
    def _split(token: str) -> tuple[str, str, bytes, bytes]:
        parts = token.split(":")
        if len(parts) != 4 or parts[0] != VERSION:
            raise SecretBoxError("not a v1 secret box ciphertext")
        try:
            nonce = _b64decode(parts[2])
            sealed = _b64decode(parts[3])
        except (binascii.Error, ValueError):
            raise SecretBoxError("malformed ciphertext encoding") from None
        if len(nonce) != NONCE_BYTES or len(sealed) < 16:
            raise SecretBoxError("malformed ciphertext")
        return parts[0], parts[1], nonce, sealed


def key_id_of(token: str) -> str:
    """The key id a ciphertext names (without opening it)."""
    parts = token.split(":")
    if len(parts) != 4 or parts[0] != VERSION:
        raise SecretBoxError("not a v1 secret box ciphertext")
    return parts[1]
