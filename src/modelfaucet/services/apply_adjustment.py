"""apply_adjustment: an operator's explicit credit or debit of a wallet (SPEC §8).

Each kind posts against its own system contra account, so the books show how much was
adjusted, refunded and charged back:

    credit: wallet +amount, contra −amount      debit: wallet −amount, contra +amount

Checks, in order: the idempotency key (replay / conflict / in flight), the wallet exists
and is a wallet (not a system account), a debit fits in the wallet's *available* balance
(balance − reserved, so funds reserved for a payout cannot be spent). Then, in one
transaction: the ledger transaction, the ``adjustments`` row, the audit row and the stored
idempotent result. A refusal writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, insert

from ..adapters.db import audit, ledger
from ..adapters.db.ledger import new_id
from ..adapters.db.tables import adjustments
from ..domain.ledger import WALLET_SCOPES, OwnerScope, Posting, Reason, SystemAccount, Transaction
from ..domain.money import format_usd
from ..domain.outcomes import InsufficientBalance, InvalidRequest, LedgerInvariantViolation
from .context import Actor, ServiceContext
from .idempotency import IdempotentRequest, StoredResponse, render_json, run_idempotent


class AdjustmentKind(StrEnum):
    ADJUSTMENT = "adjustment"
    REFUND = "refund"
    CHARGEBACK = "chargeback"


class Direction(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"


# kind -> (contra account, ledger reason)
CONTRA_BY_KIND: dict[AdjustmentKind, tuple[SystemAccount, Reason]] = {
    AdjustmentKind.ADJUSTMENT: (SystemAccount.ADJUSTMENT_CONTRA, Reason.WALLET_ADJUSTMENT),
    AdjustmentKind.REFUND: (SystemAccount.REFUND_CONTRA, Reason.WALLET_REFUND),
    AdjustmentKind.CHARGEBACK: (SystemAccount.CHARGEBACK_CONTRA, Reason.WALLET_CHARGEBACK),
}

STATUS_APPLIED = "applied"
CREATED = 201


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


def apply_adjustment(ctx: ServiceContext, command: AdjustWallet, *, actor: Actor) -> StoredResponse:
    """Apply the adjustment once; return the 201 response (or the replay of the first one)."""
    if command.amount_units <= 0:
        raise InvalidRequest("amount_usd must be greater than 0.", details={"field": "amount_usd"})

    def operation(conn: Connection) -> StoredResponse:
        return StoredResponse(CREATED, render_json(_apply(conn, ctx, command, actor)))

    return run_idempotent(ctx, command.idempotent_request(), operation)


def _apply(conn: Connection, ctx: ServiceContext, command: AdjustWallet, actor: Actor) -> dict[str, object]:
    now = ctx.clock()
    # Lock the wallet first: concurrent adjustments of one wallet run one after the other.
    wallet = ledger.get_account(conn, command.wallet_id, for_update=True)
    if wallet.owner_scope not in WALLET_SCOPES:
        raise InvalidRequest("System accounts cannot be adjusted; choose a wallet.", details={"field": "wallet_id"})
    available = int(wallet.balance_units) - int(wallet.reserved_units)
    if command.direction is Direction.DEBIT and command.amount_units > available:
        raise InsufficientBalance(
            "Wallet does not have enough balance for the adjustment.",
            details={
                "wallet_id": command.wallet_id,
                "available_usd": format_usd(max(available, 0)),
                "reserved_usd": format_usd(int(wallet.reserved_units)),
                "requested_usd": format_usd(command.amount_units),
            },
        )

    contra_account, reason = CONTRA_BY_KIND[command.kind]
    contra_id = ledger.ensure_account(conn, ctx.db.insert, OwnerScope.SYSTEM, contra_account.value, now=now)
    adjustment_id = new_id()
    wallet_posting, contra_posting = (
        (Posting.credit, Posting.debit) if command.direction is Direction.CREDIT else (Posting.debit, Posting.credit)
    )
    transaction_id = ledger.post(
        conn,
        Transaction.of(
            reason.value,
            [
                wallet_posting(command.wallet_id, command.amount_units, reason.value),
                contra_posting(contra_id, command.amount_units, reason.value),
            ],
            reference_type="adjustment",
            reference_id=adjustment_id,
        ),
        now=now,
    )
    conn.execute(
        insert(adjustments).values(
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
            created_at=now,
        )
    )
    audit.record(
        conn,
        now=now,
        actor=actor.name,
        action=f"wallet.{command.kind}.{command.direction}",
        resource_type="adjustment",
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
    after = ledger.get_account(conn, command.wallet_id)
    if command.direction is Direction.DEBIT and int(after.balance_units) < int(after.reserved_units):
        raise LedgerInvariantViolation(f"wallet {command.wallet_id} fell below its reservation")
    return {
        "id": adjustment_id,
        "wallet_id": command.wallet_id,
        "kind": str(command.kind),
        "direction": str(command.direction),
        "amount_usd": format_usd(command.amount_units),
        "status": STATUS_APPLIED,
        "reason": command.reason,
        "idempotency_key": command.idempotency_key,
        "wallet_balance_usd": format_usd(int(after.balance_units)),
    }
