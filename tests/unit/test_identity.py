"""Row ids: UUID4 text from the kernel's random source, read a block at a time; the external
user hash: HMAC-SHA256 keyed with the app id."""

from __future__ import annotations

import hmac
import os
import threading
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelfaucet.domain.identity import external_user_hash, new_id, random_hex


def test_ids_are_canonical_uuid4_text_and_unique() -> None:
    ids = [new_id() for _ in range(20_000)]  # several refills of the pool
    assert len(set(ids)) == len(ids)
    for text in ids[:2_000]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lower-case, dashed: the form stored everywhere


def test_threads_never_share_ids() -> None:
    found: list[list[str]] = [[] for _ in range(4)]

    def make(slot: int) -> None:
        found[slot] = [new_id() for _ in range(2_000)]

    threads = [threading.Thread(target=make, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [text for ids in found for text in ids]
    assert len(set(every)) == len(every)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_does_not_repeat_its_parents_ids() -> None:
    new_id()  # the parent's pool holds unused random bytes now
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, then leave at once
        os.close(read_end)
        os.write(write_end, "\n".join(new_id() for _ in range(8)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child = set(pipe.read().split("\n"))
    os.waitpid(pid, 0)
    parent = {new_id() for _ in range(8)}
    assert len(child) == 8 and not child & parent


def test_random_hex_gives_that_many_fresh_bytes() -> None:
    values = {random_hex(12) for _ in range(5_000)}
    assert len(values) == 5_000
    assert all(len(value) == 24 and int(value, 16) >= 0 for value in values)


@given(st.text(max_size=200), st.text(max_size=200))
def test_the_external_user_hash_is_hmac_sha256_keyed_with_the_app_id(app_id: str, external_user_id: str) -> None:
    """Stored end users are found by this hash: computing it from a copied keyed state must
    give exactly the one-shot HMAC, for keys longer than a SHA-256 block as well."""
    expected = hmac.digest(app_id.encode(), external_user_id.encode(), "sha256").hex()
    assert external_user_hash(app_id, external_user_id) == expected
    assert external_user_hash(app_id, external_user_id) == expected  # the cached key again
