"""Admin: the three-way Stripe sync (SPEC §20)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ...domain.timestamps import iso
from ...services.stripe_sync import SyncReport, SyncStripe, as_item, parse_since, sync_stripe
from ..deps import AdminActor, Context
from ..schemas import StrictModel, UsdString, error_responses

router = APIRouter(tags=["stripe"])


class StripeSyncIn(StrictModel):
    since: str | None = Field(
        default=None,
        max_length=64,
        description="ISO-8601 start of the window (UTC if no offset); default: 7 days back, "
        "or the oldest pending top-up if older.",
    )
    dry_run: bool = Field(default=False, description="Compare and report only; write nothing.")


class StripeSyncItem(BaseModel):
    checkout_session_id: str
    topup_id: str | None
    outcome: str
    stripe_status: str | None
    local_status: str | None
    amount_usd: UsdString


class StripeSyncOut(BaseModel):
    dry_run: bool
    since: str
    summary: dict[str, int]
    items: list[StripeSyncItem]

    @classmethod
    def of(cls, report: SyncReport) -> StripeSyncOut:
        return cls(
            dry_run=report.dry_run,
            since=iso(report.since),
            summary={str(outcome): count for outcome, count in report.summary.items()},
            items=[StripeSyncItem(**as_item(row)) for row in report.rows],
        )


@router.post(
    "/v1/admin/stripe/sync",
    response_model=StripeSyncOut,
    responses=error_responses(400, 401, 502),
)
def stripe_sync(ctx: Context, actor: AdminActor, body: StripeSyncIn | None = None) -> StripeSyncOut:
    """Compare Stripe's Checkout sessions with the top-ups and the ledger; credit a paid session
    whose webhook was lost (exactly once), expire stale ones, flag what does not agree."""
    command = body or StripeSyncIn()
    since = None if command.since is None else parse_since(command.since)
    report = sync_stripe(ctx, SyncStripe(since=since, dry_run=command.dry_run), actor=actor)
    return StripeSyncOut.of(report)
