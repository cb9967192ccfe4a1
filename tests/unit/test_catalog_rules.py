"""The catalog's money-adjacent rules on the in-memory unit of work (no database).

The seed credits the demo end user once however often it runs; a session opens for the
holder of a live key of that app only, and creates the end user's wallet once; a refused
request commits nothing. The same services run on SQLite and PostgreSQL in
``tests/integration/test_seed.py`` and ``tests/e2e/test_sessions_http.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from modelfaucet.config import Settings
from modelfaucet.domain.identity import token_hash
from modelfaucet.domain.ledger import OwnerScope, Reason, SystemAccount
from modelfaucet.domain.outcomes import InvalidRequest, InvalidSession, InvalidState, NotFound
from modelfaucet.services import catalog
from modelfaucet.services.app_secret_keys import issue_secret_key, revoke_secret_key
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.seed import DEMO_APP_SECRET_KEY, DEMO_OPENING_UNITS, seed_demo_data
from modelfaucet.services.sessions import authenticate_session, create_session
from tests.fakes.memory import MemoryStore

OPERATOR = Actor("alice", request_id="req_test")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def ctx(store: MemoryStore, clock: Clock) -> ServiceContext:
    settings = Settings(database_url="sqlite://")
    return ServiceContext(db=None, settings=settings, clock=clock, units=store)  # type: ignore[arg-type]


def opening_postings(store: MemoryStore) -> list[int]:
    return [p[3] for p in store.state.postings if p[4] == Reason.SEED_OPENING_BALANCE.value]


# --- the seed -----------------------------------------------------------------------------


def test_the_seed_credits_the_demo_end_user_once_however_often_it_runs(store: MemoryStore, ctx: ServiceContext) -> None:
    first = seed_demo_data(ctx)
    again = [seed_demo_data(ctx) for _ in range(3)]
    assert first.created_opening_balance is True
    assert [result.created_opening_balance for result in again] == [False, False, False]
    assert all(result.end_user_wallet_id == first.end_user_wallet_id for result in again)
    assert store.balance_of(first.end_user_wallet_id) == DEMO_OPENING_UNITS
    assert sorted(opening_postings(store)) == [-DEMO_OPENING_UNITS, DEMO_OPENING_UNITS]
    assert sum(account.balance_units for account in store.state.accounts.values()) == 0
    [opening] = [entry for _, entry in store.state.audit if entry.action == "seed.opening_balance"]
    assert opening.amount_units == DEMO_OPENING_UNITS


def test_the_seed_posts_the_opening_against_seed_equity(store: MemoryStore, ctx: ServiceContext) -> None:
    seeded = seed_demo_data(ctx)
    with store(read_only=True) as uow:
        equity = uow.ledger.id_for(OwnerScope.SYSTEM, SystemAccount.SEED_EQUITY.value)
    assert equity is not None
    assert store.balance_of(equity) == -DEMO_OPENING_UNITS
    assert store.balance_of(seeded.developer_wallet_id) == 0


def test_the_seed_stores_its_demo_key_once_and_only_as_a_hash(store: MemoryStore, ctx: ServiceContext) -> None:
    seeded = seed_demo_data(ctx)
    seed_demo_data(ctx)
    assert seeded.app_secret_key == DEMO_APP_SECRET_KEY
    assert list(store.state.catalog.secret_keys) == [token_hash(DEMO_APP_SECRET_KEY)]
    assert DEMO_APP_SECRET_KEY not in repr(store.state.catalog)


def test_a_demo_user_who_already_exists_is_not_credited_again(store: MemoryStore, ctx: ServiceContext) -> None:
    # The opening is posted by the run that creates the demo end user, in the same unit of work.
    seeded = seed_demo_data(ctx)
    with store() as uow:
        uow.catalog.ensure_end_user(seeded.app_id, "someone-else")
        uow.commit()
    assert seed_demo_data(ctx).created_opening_balance is False
    assert len(opening_postings(store)) == 2


# --- sessions: the app's key, and one wallet per end user ---------------------------------


def other_app_key(ctx: ServiceContext) -> str:
    developer = catalog.create_developer(ctx, OPERATOR, name="Other", email="other@example.com").developer
    catalog.create_app(
        ctx,
        OPERATOR,
        developer_id=developer.id,
        public_app_id="app_pub_other",
        name="Other",
        default_revenue_share_bps=0,
    )
    return issue_secret_key(ctx, OPERATOR, public_app_id="app_pub_other", name="backend").secret_key


def revoked_demo_key(ctx: ServiceContext) -> str:
    issued = issue_secret_key(ctx, OPERATOR, public_app_id="app_pub_demo", name="old")
    revoke_secret_key(ctx, OPERATOR, public_app_id="app_pub_demo", key_id=issued.key.id)
    return issued.secret_key


@pytest.mark.parametrize(
    ("case", "key", "public_app_id", "refusal"),
    [
        ("the app's live key", lambda ctx: DEMO_APP_SECRET_KEY, "app_pub_demo", None),
        ("no key", lambda ctx: None, "app_pub_demo", InvalidSession),
        ("a malformed key", lambda ctx: "sk-nope", "app_pub_demo", InvalidSession),
        ("an unknown key", lambda ctx: "mf_app_sk_" + "A" * 43, "app_pub_demo", InvalidSession),
        ("a revoked key of the app", revoked_demo_key, "app_pub_demo", InvalidSession),
        ("another app's key", other_app_key, "app_pub_demo", InvalidSession),
        ("the app's key for an unknown app", lambda ctx: DEMO_APP_SECRET_KEY, "app_pub_nope", InvalidSession),
    ],
)
def test_a_session_opens_only_with_a_live_key_of_that_app(
    *,
    store: MemoryStore,
    ctx: ServiceContext,
    case: str,
    key: Callable[[ServiceContext], str | None],
    public_app_id: str,
    refusal: type[Exception] | None,
) -> None:
    seed_demo_data(ctx)
    presented = key(ctx)
    commits, end_users = store.commits, len(store.state.catalog.end_users)
    if refusal is None:
        created = create_session(ctx, secret_key=presented, public_app_id=public_app_id, external_user_id="new-user")
        assert authenticate_session(ctx, created.token) == created.user
        assert store.commits == commits + 1
    else:
        with pytest.raises(refusal) as refused:
            create_session(ctx, secret_key=presented, public_app_id=public_app_id, external_user_id="new-user")
        assert refused.value.message == "A valid secret key of this app is required."
        assert refused.value.details == {}
        assert (store.commits, len(store.state.catalog.end_users)) == (commits, end_users)


def test_a_new_end_user_gets_one_empty_wallet_however_many_sessions(store: MemoryStore, ctx: ServiceContext) -> None:
    seed_demo_data(ctx)
    users = [
        create_session(ctx, secret_key=DEMO_APP_SECRET_KEY, public_app_id="app_pub_demo", external_user_id="bo").user
        for _ in range(3)
    ]
    assert len({user.account_id for user in users}) == 1
    assert len({user.session_id for user in users}) == 3
    assert store.balance_of(users[0].account_id) == 0
    wallets = [a for a in store.state.accounts.values() if a.owner_scope is OwnerScope.END_USER]
    assert len(wallets) == 2  # the demo user's and bo's


@pytest.mark.parametrize(
    ("case", "external_user_id", "feature_key", "refusal"),
    [
        ("an empty external id", "", None, InvalidRequest),
        ("a 257-character external id", "u" * 257, None, InvalidRequest),
        ("an unknown feature", "u", "nope", NotFound),
    ],
)
def test_a_refused_session_writes_nothing(
    *,
    store: MemoryStore,
    ctx: ServiceContext,
    case: str,
    external_user_id: str,
    feature_key: str | None,
    refusal: type[Exception],
) -> None:
    seed_demo_data(ctx)
    commits = store.commits
    with pytest.raises(refusal):
        create_session(
            ctx,
            secret_key=DEMO_APP_SECRET_KEY,
            public_app_id="app_pub_demo",
            external_user_id=external_user_id,
            feature_key=feature_key,
        )
    assert store.commits == commits


def test_a_key_records_its_last_use_to_the_minute(store: MemoryStore, ctx: ServiceContext, clock: Clock) -> None:
    seed_demo_data(ctx)

    def last_used() -> datetime | None:
        return store.state.catalog.secret_keys[token_hash(DEMO_APP_SECRET_KEY)].last_used_at

    def open_one() -> None:
        create_session(ctx, secret_key=DEMO_APP_SECRET_KEY, public_app_id="app_pub_demo", external_user_id="u")

    first = clock.now
    open_one()
    assert last_used() == first
    clock.now += timedelta(seconds=59)
    open_one()
    assert last_used() == first, "not rewritten within the minute"
    clock.now += timedelta(seconds=2)
    open_one()
    assert last_used() == clock.now


# --- developers and apps --------------------------------------------------------------------


def test_a_developer_gets_one_empty_wallet_and_an_email_is_taken_once(store: MemoryStore, ctx: ServiceContext) -> None:
    created = catalog.create_developer(ctx, OPERATOR, name="Ada", email=" Ada@Example.com ")
    assert created.developer.email == "ada@example.com"
    assert store.balance_of(created.wallet_id) == 0
    commits = store.commits
    with pytest.raises(InvalidState):
        catalog.create_developer(ctx, OPERATOR, name="Ada again", email="ada@example.com")
    assert store.commits == commits
    app = catalog.create_app(
        ctx,
        OPERATOR,
        developer_id=created.developer.id,
        public_app_id="app_ada",
        name="Ada's app",
        default_revenue_share_bps=5000,
    )
    assert app.developer_wallet_id == created.wallet_id
