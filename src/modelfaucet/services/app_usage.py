"""recent_usage: an app's most recent usage events, newest first (admin view)."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.catalog import APP_NOT_FOUND
from ..domain.outcomes import NotFound
from .context import ServiceContext
from .repositories import UsageLine


@dataclass(frozen=True, slots=True)
class AppUsage:
    public_app_id: str
    items: list[UsageLine]


def recent_usage(ctx: ServiceContext, public_app_id: str, *, limit: int = 50) -> AppUsage:
    with ctx.reader() as uow:
        app = uow.usage.billable_apps([public_app_id]).get(public_app_id)
        if app is None:
            raise NotFound(APP_NOT_FOUND, details={"public_app_id": public_app_id})
        return AppUsage(public_app_id, uow.usage.recent(app.id, limit=limit))
