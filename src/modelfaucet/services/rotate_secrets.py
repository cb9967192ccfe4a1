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

from ..adapters.secretbox import SecretBox
from ..domain.audit import AuditEntry
from .context import Actor, ServiceContext
from .provider_keys import RESOURCE_TYPE, associated_data
from .repositories import SealedSecret

DEFAULT_BATCH_SIZE = 200


@dataclass(frozen=True, slots=True)
class RotationResult:
    key_id: str
    rotated_count: int
    remaining_count: int


def count_needing_rotation(ctx: ServiceContext) -> int:
    box = SecretBox.from_settings(ctx.settings)
    with ctx.reader() as uow:
        return uow.provider_keys.count_not_sealed_with(box.key_id)


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
        with ctx.unit_of_work() as uow:
            batch = uow.provider_keys.not_sealed_with(box.key_id, skip=skipped, limit=batch_size)
            if not batch:
                break
            batch_rotated = 0
            for key_row_id, was in batch:
                aad = associated_data(key_row_id)
                sealed = SealedSecret(box.key_id, box.encrypt(box.decrypt(was.ciphertext, aad=aad), aad=aad))
                if uow.provider_keys.reseal(key_row_id, was=was, sealed=sealed):
                    batch_rotated += 1
                else:  # deleted or re-added meanwhile: left alone
                    skipped.add(key_row_id)
            uow.audit.add(
                AuditEntry(
                    actor=actor.name,
                    action="secrets.rotate_batch",
                    resource_type=RESOURCE_TYPE,
                    request_id=actor.request_id,
                    details={"key_id": box.key_id, "rotated_count": batch_rotated},
                )
            )
            uow.commit()
        rotated += batch_rotated
        if on_batch is not None:
            on_batch(batch_rotated)
    return RotationResult(key_id=box.key_id, rotated_count=rotated, remaining_count=count_needing_rotation(ctx))
