"""rotate_secrets: re-encrypt every provider key under the current secret key, batch by batch.

Run after deploying ``MODELFAUCET_SECRET_KEY`` = new key and ``MODELFAUCET_SECRET_KEY_PREVIOUS``
= old key(s): every process then reads both, so the service keeps working while rows move.
Each batch is one short transaction; a row is rewritten only if its ciphertext is still the
one that was read (a concurrent delete or re-add is left alone), so the command can be
stopped and re-run at any time. When it reports zero remaining, the old key can be removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, func, select, update

from ..adapters.db import audit
from ..adapters.db.tables import provider_keys
from ..adapters.secretbox import SecretBox
from .context import Actor, ServiceContext

DEFAULT_BATCH_SIZE = 200


@dataclass(frozen=True)
class RotationResult:
    key_id: str
    rotated_count: int
    remaining_count: int


def count_needing_rotation(ctx: ServiceContext) -> int:
    box = SecretBox.from_settings(ctx.settings)
    with ctx.db.read() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(provider_keys).where(provider_keys.c.key_id != box.key_id)
            ).scalar_one()
        )


def rotate_secrets(
    ctx: ServiceContext,
    *,
    actor: Actor,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> RotationResult:
    box = SecretBox.from_settings(ctx.settings)
    rotated = 0
    skipped: set[str] = set()
    while True:
        with ctx.db.transaction() as conn:
            rows = conn.execute(
                select(provider_keys.c.id, provider_keys.c.ciphertext)
                .where(provider_keys.c.key_id != box.key_id)
                .where(provider_keys.c.id.not_in(skipped) if skipped else provider_keys.c.id.is_not(None))
                .order_by(provider_keys.c.id)
                .limit(batch_size)
            ).all()
            if not rows:
                break
            now = ctx.clock()
            batch_rotated = 0
            for row in rows:
                aad = f"provider_key:{row.id}"
                sealed = box.encrypt(box.decrypt(str(row.ciphertext), aad=aad), aad=aad)
                changed = conn.execute(
                    update(provider_keys)
                    .where(and_(provider_keys.c.id == row.id, provider_keys.c.ciphertext == row.ciphertext))
                    .values(ciphertext=sealed, key_id=box.key_id, updated_at=now)
                ).rowcount
                if changed:
                    batch_rotated += 1
                else:
                    skipped.add(str(row.id))
            audit.record(
                conn,
                now=now,
                actor=actor.name,
                action="secrets.rotate_batch",
                resource_type="provider_key",
                amount_units=None,
                request_id=actor.request_id,
                details={"key_id": box.key_id, "rotated_count": batch_rotated},
            )
        rotated += batch_rotated
        if on_batch is not None:
            on_batch(batch_rotated)
    return RotationResult(key_id=box.key_id, rotated_count=rotated, remaining_count=count_needing_rotation(ctx))
