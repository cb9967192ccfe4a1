"""Web session rules (services/web_sessions.py) on the in-memory books: who may sign in to
which door, idle and absolute expiry, sign-out, and that only a hash of the id is kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from modelfaucet.config import Settings
from modelfaucet.domain.catalog import CatalogStatus
from modelfaucet.domain.identity import token_hash
from modelfaucet.domain.outcomes import InvalidSession
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.developer_tokens import issue_developer_token, revoke_developer_token
from modelfaucet.services.seed import seed_demo_data
from modelfaucet.services.web_sessions import (
    SESSION_ENDED,
    SIGN_IN_REFUSED,
    Principal,
    open_session,
    sign_in,
    sign_out,
)
from tests.fakes.memory import MemoryStore

ALICE = "alice-token-0123456789abcdef-0123456789"
ADMIN = "admin-token-0123456789abcdef-0123456789"


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
    settings = Settings(
        database_url="sqlite://",
        admin_token=ADMIN,
        operator_tokens={"alice": ALICE},
        web_session_idle_seconds=600,
        web_session_max_seconds=3600,
    )
    return ServiceContext(db=None, settings=settings, clock=clock, units=store)  # type: ignore[arg-type]


def test_an_operator_token_opens_a_console_session_named_after_the_operator(
    ctx: ServiceContext, store: MemoryStore
) -> None:
    issued = sign_in(ctx, Principal.OPERATOR, ALICE)
    assert issued.subject == "alice"
    session = open_session(ctx, Principal.OPERATOR, issued.session_id)
    assert session.subject == "alice" and session.actor().name == "alice"
    assert session.csrf_token == issued.csrf_token
    stored = list(store.state.web.sessions.values())
    assert [s.id_hash for s in stored] == [token_hash(issued.session_id)]
    assert all(ALICE not in repr(s) and issued.session_id not in repr(s) for s in stored)
    assert sign_in(ctx, Principal.OPERATOR, ADMIN).subject == "admin"


@pytest.mark.parametrize("token", ["", "   ", "wrong", ALICE + "x", ALICE[:-1]])
def test_a_wrong_token_is_refused_with_one_message(ctx: ServiceContext, store: MemoryStore, token: str) -> None:
    with pytest.raises(InvalidSession) as refused:
        sign_in(ctx, Principal.OPERATOR, token)
    assert refused.value.message == SIGN_IN_REFUSED
    assert store.state.web.sessions == {}


def test_a_developer_token_opens_the_portal_only(ctx: ServiceContext) -> None:
    seed = seed_demo_data(ctx)
    token = issue_developer_token(ctx, Actor("alice"), developer_id=seed.developer_id, name="t").token
    with pytest.raises(InvalidSession):
        sign_in(ctx, Principal.OPERATOR, token)
    with pytest.raises(InvalidSession):
        sign_in(ctx, Principal.DEVELOPER, ALICE)
    issued = sign_in(ctx, Principal.DEVELOPER, token)
    assert issued.subject == seed.developer_id
    assert open_session(ctx, Principal.DEVELOPER, issued.session_id).actor().name == f"developer:{seed.developer_id}"
    with pytest.raises(InvalidSession):  # the developer's session id at the console's door
        open_session(ctx, Principal.OPERATOR, issued.session_id)


def test_idle_sessions_end_and_use_keeps_them_alive(ctx: ServiceContext, clock: Clock, store: MemoryStore) -> None:
    issued = sign_in(ctx, Principal.OPERATOR, ALICE)
    for _ in range(3):  # seen every 5 minutes: alive past the 10-minute idle limit
        clock.now += timedelta(minutes=5)
        open_session(ctx, Principal.OPERATOR, issued.session_id)
    clock.now += timedelta(minutes=10, seconds=1)
    with pytest.raises(InvalidSession):
        open_session(ctx, Principal.OPERATOR, issued.session_id)
    assert store.state.web.sessions == {}  # an ended session's row is gone


def test_sessions_end_at_the_absolute_limit_however_busy(ctx: ServiceContext, clock: Clock) -> None:
    issued = sign_in(ctx, Principal.OPERATOR, ALICE)
    for _ in range(11):
        clock.now += timedelta(minutes=5)
        open_session(ctx, Principal.OPERATOR, issued.session_id)
    clock.now += timedelta(minutes=5)  # 60 minutes after signing in
    with pytest.raises(InvalidSession):
        open_session(ctx, Principal.OPERATOR, issued.session_id)


def test_sign_out_ends_the_session_server_side(ctx: ServiceContext) -> None:
    issued = sign_in(ctx, Principal.OPERATOR, ALICE)
    other = sign_in(ctx, Principal.OPERATOR, ALICE)
    assert sign_out(ctx, issued.session_id) is True
    with pytest.raises(InvalidSession):
        open_session(ctx, Principal.OPERATOR, issued.session_id)
    assert open_session(ctx, Principal.OPERATOR, other.session_id).subject == "alice"
    assert sign_out(ctx, issued.session_id) is False


def test_signing_in_clears_idle_sessions_of_others(ctx: ServiceContext, clock: Clock, store: MemoryStore) -> None:
    sign_in(ctx, Principal.OPERATOR, ALICE)
    clock.now += timedelta(hours=2)
    sign_in(ctx, Principal.OPERATOR, ADMIN)
    assert [s.subject for s in store.state.web.sessions.values()] == ["admin"]


@pytest.mark.parametrize("session_id", [None, "", "x" * 500, "not-a-session"])
def test_unknown_session_ids_are_refused(ctx: ServiceContext, session_id: str | None) -> None:
    with pytest.raises(InvalidSession):
        open_session(ctx, Principal.OPERATOR, session_id)


def test_an_operator_removed_from_the_configuration_is_signed_out(ctx: ServiceContext, store: MemoryStore) -> None:
    issued = sign_in(ctx, Principal.OPERATOR, ALICE)
    without_alice = ctx.settings.model_copy(update={"operator_tokens": {}})
    later = ServiceContext(db=None, settings=without_alice, clock=ctx.clock, units=store)  # type: ignore[arg-type]
    with pytest.raises(InvalidSession):
        open_session(later, Principal.OPERATOR, issued.session_id)
    assert store.state.web.sessions == {}


# --- a portal session lives only while its developer token does -------------------------------


def _developer_session(ctx: ServiceContext) -> tuple[str, str, str, str]:
    """(developer id, token, token id, session id) of a freshly signed-in developer."""
    seed = seed_demo_data(ctx)
    issued = issue_developer_token(ctx, Actor("alice"), developer_id=seed.developer_id, name="t")
    session = sign_in(ctx, Principal.DEVELOPER, issued.token)
    return seed.developer_id, issued.token, issued.record.id, session.session_id


def test_a_portal_session_records_its_token_and_ends_when_it_is_revoked(
    ctx: ServiceContext, store: MemoryStore
) -> None:
    developer_id, token, token_id, session_id = _developer_session(ctx)
    [stored] = store.state.web.sessions.values()
    assert stored.developer_token_id == token_id
    other = issue_developer_token(ctx, Actor("alice"), developer_id=developer_id, name="other").record.id
    revoke_developer_token(ctx, Actor("alice"), developer_id=developer_id, token_id=other)
    assert open_session(ctx, Principal.DEVELOPER, session_id).subject == developer_id  # another token: no matter
    revoke_developer_token(ctx, Actor("alice"), developer_id=developer_id, token_id=token_id)
    with pytest.raises(InvalidSession) as ended:
        open_session(ctx, Principal.DEVELOPER, session_id)
    assert ended.value.message == SESSION_ENDED
    assert store.state.web.sessions == {}
    with pytest.raises(InvalidSession):
        sign_in(ctx, Principal.DEVELOPER, token)


def test_a_suspended_developers_portal_session_ends(ctx: ServiceContext, store: MemoryStore) -> None:
    developer_id, token, _, session_id = _developer_session(ctx)
    developers = store.state.catalog.developers
    [email] = [email for email, d in developers.items() if d.id == developer_id]
    developers[email] = replace(developers[email], status=CatalogStatus.SUSPENDED)
    with pytest.raises(InvalidSession):
        open_session(ctx, Principal.DEVELOPER, session_id)
    assert store.state.web.sessions == {}
    with pytest.raises(InvalidSession):
        sign_in(ctx, Principal.DEVELOPER, token)


def test_a_developer_session_without_a_token_id_is_ended(ctx: ServiceContext, store: MemoryStore) -> None:
    _, _, _, session_id = _developer_session(ctx)
    [(key, stored)] = store.state.web.sessions.items()
    store.state.web.sessions[key] = replace(stored, developer_token_id=None)  # as a row from before 0010
    with pytest.raises(InvalidSession):
        open_session(ctx, Principal.DEVELOPER, session_id)
    assert store.state.web.sessions == {}


def _web_audit(store: MemoryStore) -> list[tuple[str, str, str | None, dict[str, object] | None]]:
    return [
        (e.actor, e.action, e.request_id, e.details)
        for _, e in store.state.audit
        if e.action.startswith("web_session.")
    ]


def test_sign_in_refusal_and_sign_out_are_audited_without_the_token(ctx: ServiceContext, store: MemoryStore) -> None:
    issued = sign_in(ctx, Principal.OPERATOR, ALICE, request_id="req-1")
    with pytest.raises(InvalidSession):
        sign_in(ctx, Principal.OPERATOR, ALICE + "x", request_id="req-2")
    assert sign_out(ctx, issued.session_id, request_id="req-3") is True
    assert sign_out(ctx, issued.session_id, request_id="req-4") is False  # nothing ended: nothing audited
    assert _web_audit(store) == [
        ("alice", "web_session.sign_in", "req-1", {"principal": "operator"}),
        ("anonymous", "web_session.sign_in_refused", "req-2", {"principal": "operator"}),
        ("alice", "web_session.sign_out", "req-3", {"principal": "operator"}),
    ]
    assert ALICE[:10] not in repr(store.state.audit) and issued.session_id not in repr(store.state.audit)
