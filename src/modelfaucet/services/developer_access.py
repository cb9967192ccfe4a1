"""What a developer reads with their own token (SPEC §17): who they are, their money,
their earnings, their payouts, and their provider keys.

Every function takes the developer's id from the authenticated token — never from the
request — and every query is scoped by it: an app, payout or provider key of another
developer is answered exactly like an unknown id (the same NotFound, message and details).

Payouts are shown without operator names or notes: a note is written by an operator for
operators (there is no way to mark one as meant for the developer), so none is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..domain.catalog import APP_NOT_FOUND
from ..domain.earnings import EarningsGrouping, EarningsLine, lifetime_totals, total_of
from ..domain.ledger import OwnerScope
from ..domain.outcomes import NotFound
from ..domain.payouts import PAYOUT_NOT_FOUND, PayoutStatus
from ..domain.windows import Window, reading_window
from . import provider_keys
from .catalog import require_developer
from .context import Actor, ServiceContext
from .developer_tokens import DeveloperPrincipal
from .provider_keys import PROVIDER_KEY_NOT_FOUND, KeyOwner
from .repositories import (
    AppRecord,
    DeveloperPayout,
    DeveloperRecord,
    FeatureRecord,
    PayoutStatusChange,
    ProviderKeyRecord,
)
from .statements import StatementOf, require_wallet_id, statement_of_owner
from .unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class DeveloperApp:
    app: AppRecord
    features: tuple[FeatureRecord, ...]


@dataclass(frozen=True, slots=True)
class DeveloperProfile:
    developer: DeveloperRecord
    wallet_id: str
    apps: tuple[DeveloperApp, ...]


@dataclass(frozen=True, slots=True)
class DeveloperBalance:
    wallet_id: str
    balance_units: int
    reserved_units: int
    earned_units: int  # lifetime credits from usage
    paid_out_units: int  # lifetime payouts paid
    pending_payout_units: int  # pending and processing payouts

    @property
    def available_units(self) -> int:
        return self.balance_units - self.reserved_units


@dataclass(frozen=True, slots=True)
class Earnings:
    grouping: EarningsGrouping
    window: Window
    items: tuple[EarningsLine, ...]
    totals: EarningsLine


@dataclass(frozen=True, slots=True)
class PayoutWithHistory:
    payout: DeveloperPayout
    history: tuple[PayoutStatusChange, ...]


def developer_name(ctx: ServiceContext, developer_id: str) -> str | None:
    """The developer's name, as the portal's header shows it; None if there is none."""
    with ctx.reader() as uow:
        found = uow.catalog.get_developer(developer_id)
    return None if found is None else found.name


def developer_profile(ctx: ServiceContext, developer_id: str) -> DeveloperProfile:
    with ctx.reader() as uow:
        developer = require_developer(uow, developer_id)
        wallet_id = require_wallet_id(uow, OwnerScope.DEVELOPER, developer_id)
        apps = uow.developers.apps(developer_id)
        features = uow.developers.features([app.id for app in apps])
    return DeveloperProfile(
        developer,
        wallet_id,
        tuple(DeveloperApp(app, tuple(f for f in features if f.app_id == app.id)) for app in apps),
    )


def developer_balance(ctx: ServiceContext, developer_id: str) -> DeveloperBalance:
    """The wallet, and its lifetime earned and paid-out totals, read at one moment."""
    with ctx.reader(snapshot=True) as uow:
        return balance_in(uow, developer_id)


def balance_in(uow: UnitOfWork, developer_id: str) -> DeveloperBalance:
    """:func:`developer_balance` inside a reader the caller holds (one moment with other reads)."""
    wallet = uow.ledger.require(require_wallet_id(uow, OwnerScope.DEVELOPER, developer_id))
    lifetime = lifetime_totals(uow.statements.totals_by_reason(wallet.account_id))
    pending = uow.developers.open_payout_units(developer_id)
    return DeveloperBalance(
        wallet_id=wallet.account_id,
        balance_units=wallet.balance_units,
        reserved_units=wallet.reserved_units,
        earned_units=lifetime.earned_units,
        paid_out_units=lifetime.paid_out_units,
        pending_payout_units=pending,
    )


def developer_earnings(
    ctx: ServiceContext,
    developer_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    grouping: EarningsGrouping = EarningsGrouping.DAY,
    public_app_id: str | None = None,
) -> Earnings:
    """The usage of the developer's apps (or of one of them) over a window, grouped; the
    channel revenue totals equal the ``usage_channel_revenue`` postings of the window."""
    with ctx.reader(snapshot=True) as uow:
        window = reading_window(start, end, now=uow.now)
        apps = _apps(uow.developers.apps(developer_id), public_app_id)
        items = uow.developers.earnings([app.id for app in apps], start=window.start, end=window.end, grouping=grouping)
    return Earnings(grouping, window, tuple(items), total_of(items))


def _apps(apps: Sequence[AppRecord], public_app_id: str | None) -> Sequence[AppRecord]:
    if public_app_id is None:
        return apps
    chosen = [app for app in apps if app.public_app_id == public_app_id]
    if not chosen:  # unknown, or another developer's: the same answer
        raise NotFound(APP_NOT_FOUND, details={"public_app_id": public_app_id})
    return chosen


def developer_payouts(
    ctx: ServiceContext, developer_id: str, *, status: PayoutStatus | None = None, limit: int = 100
) -> list[DeveloperPayout]:
    with ctx.reader() as uow:
        return uow.developers.payouts(developer_id, status=status, limit=limit)


def developer_payout(ctx: ServiceContext, developer_id: str, payout_id: str) -> PayoutWithHistory:
    with ctx.reader() as uow:
        payout = uow.developers.payout(developer_id, payout_id)
        if payout is None:  # unknown, or another developer's: the same answer
            raise NotFound(PAYOUT_NOT_FOUND, details={"payout_id": payout_id})
        history = uow.developers.payout_history(payout.id)
    return PayoutWithHistory(payout, tuple(history))


def developer_statement(
    ctx: ServiceContext, developer_id: str, *, start: datetime | None = None, end: datetime | None = None
) -> StatementOf:
    """The developer's own wallet statement, checked (see :mod:`.statements`)."""
    return statement_of_owner(ctx, OwnerScope.DEVELOPER, developer_id, start=start, end=end)


# --- provider keys for developer_key routing: the vault's rules, the developer as owner ---
#
# The API passes the token's principal; the portal passes the signed-in session's developer
# id and its audit name (``developer:<id>`` both ways) to the ``*_of`` forms.


def add_developer_provider_key(
    ctx: ServiceContext,
    principal: DeveloperPrincipal,
    *,
    provider: str,
    api_key: str,
    base_url: str | None,
    models_allowed: list[str] | None,
) -> ProviderKeyRecord:
    return add_provider_key_of(
        ctx,
        principal.developer_id,
        principal.actor,
        provider=provider,
        api_key=api_key,
        base_url=base_url,
        models_allowed=models_allowed,
    )


def add_provider_key_of(
    ctx: ServiceContext,
    developer_id: str,
    actor: Actor,
    *,
    provider: str,
    api_key: str,
    base_url: str | None,
    models_allowed: list[str] | None,
) -> ProviderKeyRecord:
    return provider_keys.add_provider_key(
        ctx,
        owner=KeyOwner(OwnerScope.DEVELOPER, developer_id),
        provider=provider,
        api_key=api_key,
        base_url=base_url,
        models_allowed=models_allowed,
        actor=actor,
    )


def list_developer_provider_keys(ctx: ServiceContext, principal: DeveloperPrincipal) -> list[ProviderKeyRecord]:
    return provider_keys_of(ctx, principal.developer_id)


def provider_keys_of(ctx: ServiceContext, developer_id: str) -> list[ProviderKeyRecord]:
    return provider_keys.list_provider_keys(ctx, owner_scope=OwnerScope.DEVELOPER, owner_id=developer_id)


def delete_developer_provider_key(ctx: ServiceContext, principal: DeveloperPrincipal, key_row_id: str) -> None:
    delete_provider_key_of(ctx, principal.developer_id, principal.actor, key_row_id)


def delete_provider_key_of(ctx: ServiceContext, developer_id: str, actor: Actor, key_row_id: str) -> None:
    """Delete one of the developer's keys. Another owner's key is NotFound, exactly like an
    unknown id (the end-user route answers 403 there; a developer learns nothing)."""
    owner = KeyOwner(OwnerScope.DEVELOPER, developer_id)
    with ctx.reader() as uow:
        key = uow.provider_keys.get(key_row_id)
    if key is None or (key.owner_scope, key.owner_id) != (owner.scope, owner.owner_id):
        raise NotFound(PROVIDER_KEY_NOT_FOUND, details={"field": "id"})
    # Keys never change owner, so the vault's own check (which would say 403) cannot differ.
    provider_keys.delete_provider_key(ctx, key_row_id=key_row_id, owner=owner, actor=actor)
