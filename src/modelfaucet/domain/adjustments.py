"""The vocabulary of an operator's adjustment (SPEC §8): its kind and its direction.

The schema's CHECK constraints on ``adjustments.kind`` and ``adjustments.direction`` are
built from these enums.
"""

from __future__ import annotations

from enum import StrEnum


class AdjustmentKind(StrEnum):
    ADJUSTMENT = "adjustment"
    REFUND = "refund"
    CHARGEBACK = "chargeback"


class Direction(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"
