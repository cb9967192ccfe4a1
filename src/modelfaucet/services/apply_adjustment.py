"""apply_adjustment: an operator's explicit credit or debit of a wallet (SPEC §8).

Each kind posts against its own system contra account, so the books show how much was
adjusted, refunded and charged back:

    credit: wallet +amount, contra −amount      debit: wallet −amount, contra +amount

Checks, in order: the idempotency key (replay / conflict / in flight), the wallet exists
and is a wallet (not a system account), a debit fits in the wallet's *available* balance
(balance − reserved, so funds reserved for a payout cannot be spent). Then, in one unit
of work: the ledger transaction, the ``adjustments`` row, the audit entry and the stored
idempotent result. A refusal writes nothing. The result is an :class:`AdjustmentApplied`;
``http/`` decides it is a 201.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The enums live in the domain (the schema's CHECKs are built from them) and are
# re-exported here, where callers of this operation have always found them.
from ..domain.adjustments import AdjustmentKind as AdjustmentKind  # noqa: PLC0414
from ..domain.adjustments import Direction as Direction  # noqa: PLC0414
from ..domain.audit import AuditEntry
from ..domain.identity import new_id
from ..domain.ledger import WALLET_SCOPES, OwnerScope, Reason, SystemAccount, Transaction
from ..domain.money import format_usd, parse_usd
from ..domain.outcomes import InsufficientBalance, InvalidRequest, LedgerInvariantViolation
from .context import Actor, ServiceContext
from .holds import expire_overdue_on
from .idempotency import Idempotent, IdempotentRequest, run_idempotent
from .repositories import AdjustmentRecord
from .unit_of_work import UnitOfWork

# kind -> (contra account, ledger reason)
CONTRA_BY_KIND: dict[AdjustmentKind, tuple[SystemAccount, Reason]] = {
    AdjustmentKind.ADJUSTMENT: (SystemAccount.ADJUSTMENT_CONTRA, Reason.WALLET_ADJUSTMENT),
    AdjustmentKind.REFUND: (SystemAccount.REFUND_CONTRA, Reason.WALLET_REFUND),
    AdjustmentKind.CHARGEBACK: (SystemAccount.CHARGEBACK_CONTRA, Reason.WALLET_CHARGEBACK),
}

STATUS_APPLIED = "applied"
ADJUSTMENT_REFERENCE_TYPE = "adjustment"


@dataclass(frozen=True, slots=True)
class AdjustWallet:
    """The command: what the operator asked for, already parsed (amount in 1e-8 USD units)."""

    wallet_id: str
    kind: AdjustmentKind
    direction: Direction
    amount_units: int
    reason: str
    idempotency_key: str | None = None

    def idempotent_request(self) -> IdempotentRequest | None:
        if self.idempotency_key is None:
            return None
        return IdempotentRequest(
            scope=f"adjustment:{self.wallet_id}",
            key=self.idempotency_key,
            summary={
                "kind": str(self.kind),
                "direction": str(self.direction),
                "amount_usd": format_usd(self.amount_units),
                "reason": self.reason,
            },
        )


@dataclass(frozen=True, slots=True)
class AdjustmentApplied:
    """The result: the adjustment as applied and the wallet's balance right after it."""

    id: str
    wallet_id: str
    kind: AdjustmentKind
    direction: Direction
    amount_units: int
    status: str
    reason: str
    idempotency_key: str | None
    wallet_balance_units: int

    def to_record(self) -> dict[str, Any]:
        # The stored form is the first release's response body, so keys stored by it replay.
        return {
            "id": self.id,
            "wallet_id": self.wallet_id,
            "kind": str(self.kind),
            "direction": str(self.direction),
            "amount_usd": format_usd(self.amount_units),
            "status": self.status,
            "reason": self.reason,
            "idempotency_key": self.idempotency_key,
            "wallet_balance_usd": format_usd(self.wallet_balance_units),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AdjustmentApplied:
        return cls(
            id=record["id"],
            wallet_id=record["wallet_id"],
            kind=AdjustmentKind(record["kind"]),
            direction=Direction(record["direction"]),
            amount_units=parse_usd(record["amount_usd"]),
            status=record["status"],
            reason=record["reason"],
            idempotency_key=record["idempotency_key"],
            wallet_balance_units=parse_usd(record["wallet_balance_usd"]),
        )


def apply_adjustment(ctx: ServiceContext, command: AdjustWallet, *, actor: Actor) -> Idempotent[AdjustmentApplied]:
    """Apply the adjustment once; return it (or the stored result of the first request)."""
    if command.amount_units <= 0:
        raise InvalidRequest("amount_usd must be greater than 0.", details={"field": "amount_usd"})
    return run_idempotent(
        ctx,
        command.idempotent_request(),
        lambda uow: _apply(uow, command, actor),
        AdjustmentApplied.from_record,
    )


def _apply(uow: UnitOfWork, command: AdjustWallet, actor: Actor) -> AdjustmentApplied:
    # Lock the wallet first: concurrent adjustments of one wallet run one after the other.
    # Then its overdue holds expire (SPEC §18), so a debit sees the true available.
    wallet = expire_overdue_on(uow, uow.ledger.require(command.wallet_id, for_update=True))
    if wallet.owner_scope not in WALLET_SCOPES:
        raise InvalidRequest("System accounts cannot be adjusted; choose a wallet.", details={"field": "wallet_id"})
    if command.direction is Direction.DEBIT and command.amount_units > wallet.available_units:
        raise InsufficientBalance(
            "Wallet does not have enough balance for the adjustment.",
            details={
                "wallet_id": command.wallet_id,
                "available_usd": format_usd(max(wallet.available_units, 0)),
                "reserved_usd": format_usd(wallet.reserved_units),
                "requested_usd": format_usd(command.amount_units),
            },
        )

    contra_account, reason = CONTRA_BY_KIND[command.kind]
    contra_id = uow.ledger.ensure(OwnerScope.SYSTEM, contra_account.value)
    adjustment_id = new_id()
    source, target = (
        (contra_id, command.wallet_id) if command.direction is Direction.CREDIT else (command.wallet_id, contra_id)
    )
    transaction_id = uow.ledger.post(
        Transaction.transfer(
            reason.value,
            debit=source,
            credit=target,
            amount_units=command.amount_units,
            reference_type=ADJUSTMENT_REFERENCE_TYPE,
            reference_id=adjustment_id,
        )
    )
    uow.adjustments.add(
        AdjustmentRecord(
            id=adjustment_id,
            account_id=command.wallet_id,
            kind=str(command.kind),
            direction=str(command.direction),
            amount_units=command.amount_units,
            status=STATUS_APPLIED,
            reason=command.reason,
            idempotency_key=command.idempotency_key,
            actor=actor.name,
            transaction_id=transaction_id,
        )
    )
    uow.audit.add(
        AuditEntry(
            actor=actor.name,
            action=f"wallet.{command.kind}.{command.direction}",
            resource_type=ADJUSTMENT_REFERENCE_TYPE,
            resource_id=adjustment_id,
            after_status=STATUS_APPLIED,
            amount_units=command.amount_units,
            note=command.reason,
            request_id=actor.request_id,
            details={
                "wallet_id": command.wallet_id,
                "kind": str(command.kind),
                "direction": str(command.direction),
                "idempotency_key": command.idempotency_key,
                "transaction_id": transaction_id,
            },
        )
    )
    after = uow.ledger.require(command.wallet_id)
    if after.available_units < 0:
        raise LedgerInvariantViolation(f"wallet {command.wallet_id} fell below its reservation")
    return AdjustmentApplied(
        id=adjustment_id,
        wallet_id=command.wallet_id,
        kind=command.kind,
        direction=command.direction,
        amount_units=command.amount_units,
        status=STATUS_APPLIED,
        reason=command.reason,
        idempotency_key=command.idempotency_key,
        wallet_balance_units=after.balance_units,
    )
