"""Hashes of identifiers that must not be stored in clear."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import threading

_RANDOM_POOL_BYTES = 4096  # 256 ids per read of the kernel's random source


class _RandomPool(threading.local):
    """Random bytes read from ``os.urandom`` a block at a time, per thread: one system
    call per 256 ids instead of one per id (the hot write paths make two ids per usage
    event). A forked process starts with an empty pool, so it never repeats its parent's."""

    def __init__(self) -> None:
        self.block = b""
        self.position = 0

    def take(self, size: int) -> bytearray:
        if self.position + size > len(self.block):
            self.block = os.urandom(_RANDOM_POOL_BYTES)
            self.position = 0
        start = self.position
        self.position = start + size
        return bytearray(self.block[start : start + size])


_pool = _RandomPool()


def _forget_pool() -> None:
    _pool.block, _pool.position = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


@functools.lru_cache(maxsize=1024)
def _keyed(app_id: str) -> hmac.HMAC:
    """The HMAC-SHA256 keyed with one app's id, before any message (its key is not secret:
    the hash keeps external ids out of storage, not away from the app)."""
    return hmac.new(app_id.encode(), digestmod=hashlib.sha256)


def external_user_hash(app_id: str, external_user_id: str) -> str:
    """The per-app hash under which an app's external user id is stored: HMAC-SHA256 keyed
    with the app id. Computed from a copy of the app's keyed state: cheaper than a one-shot
    ``hmac.digest``, and it never releases the interpreter lock, which made the posting
    worker wait to get it back once per event under load."""
    mac = _keyed(app_id).copy()
    mac.update(external_user_id.encode())
    return mac.hexdigest()


def token_hash(token: str) -> str:
    """Session tokens are stored only as this hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def random_hex(size: int) -> str:
    """``size`` random bytes as hex (request ids and the like), from the same pool."""
    return _pool.take(size).hex()


def new_id() -> str:
    """A new random identifier for a row (UUID4 text)."""
    raw = _pool.take(16)
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
