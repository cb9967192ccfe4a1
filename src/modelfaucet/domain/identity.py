"""Hashes of identifiers that must not be stored in clear."""

from __future__ import annotations

import hashlib
import hmac
import uuid


def external_user_hash(app_id: str, external_user_id: str) -> str:
    """The per-app hash under which an app's external user id is stored."""
    return hmac.digest(app_id.encode(), external_user_id.encode(), "sha256").hex()


def token_hash(token: str) -> str:
    """Session tokens are stored only as this hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_id() -> str:
    """A new random identifier for a row (UUID4 text)."""
    return str(uuid.uuid4())
