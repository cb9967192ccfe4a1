"""The provider key vault at the service level, on SQLite and PostgreSQL."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from modelfaucet.adapters.db.tables import audit_log, provider_keys
from modelfaucet.adapters.egress import EgressPolicy, UnsafeUrl
from modelfaucet.adapters.netpolicy import IPAddress
from modelfaucet.adapters.secretbox import SecretBox, SecretBoxError, generate_key, key_id_of
from modelfaucet.domain.ledger import PLATFORM_OWNER_ID, OwnerScope
from modelfaucet.domain.outcomes import Forbidden, InvalidRequest, NotFound
from modelfaucet.services import provider_keys as vault
from modelfaucet.services.context import Actor, ServiceContext
from modelfaucet.services.provider_keys import KeyOwner
from modelfaucet.services.repositories import ProviderKeyRecord
from modelfaucet.services.rotate_secrets import count_needing_rotation, rotate_secrets
from modelfaucet.services.seed import SeedResult
from modelfaucet.services.verify_audit import verify_audit_chain
from tests.conftest import with_settings

OPENAI_KEY = "sk-FAKEproj0123456789abcdefWXYZ"
ANTHROPIC_KEY = "sk-ant-FAKE-api03-0123456789abcdefghijklmnopqrstuv"
OPERATOR = Actor(name="alice", request_id="req_test")
PLATFORM = KeyOwner(OwnerScope.PLATFORM, PLATFORM_OWNER_ID)


def public_dns(host: str, port: int) -> list[IPAddress]:
    return [ipaddress.ip_address("93.184.216.34")]


PUBLIC = EgressPolicy(resolver=public_dns)


@pytest.fixture
def keyed_ctx(ctx: ServiceContext) -> ServiceContext:
    return replace(ctx, settings=with_settings(ctx.settings, secret_key=generate_key()))


def add(
    ctx: ServiceContext,
    api_key: str = OPENAI_KEY,
    *,
    owner: KeyOwner = PLATFORM,
    provider: str = "openai",
    base_url: str | None = None,
    models: list[str] | None = None,
) -> ProviderKeyRecord:
    return vault.add_provider_key(
        ctx,
        owner=owner,
        provider=provider,
        api_key=api_key,
        base_url=base_url,
        models_allowed=models,
        actor=OPERATOR,
        egress_policy=PUBLIC,
    )


def stored(ctx: ServiceContext) -> list[dict[str, object]]:
    with ctx.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(provider_keys))]


def audit_rows(ctx: ServiceContext) -> list[dict[str, object]]:
    with ctx.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(audit_log).order_by(audit_log.c.id))]


def test_a_key_is_stored_encrypted_and_shown_only_masked(keyed_ctx: ServiceContext) -> None:
    created = add(keyed_ctx, base_url="https://api.openai.com/v1", models=["gpt-4o-mini"])
    assert created.masked == "sk-…WXYZ"
    assert OPENAI_KEY not in repr(created)
    (row,) = stored(keyed_ctx)
    assert OPENAI_KEY not in repr(row)
    assert str(row["ciphertext"]).startswith(f"v1:{row['key_id']}:")
    assert row["key_id"] == SecretBox.from_settings(keyed_ctx.settings).key_id
    assert vault.open_provider_key(keyed_ctx, created.id) == OPENAI_KEY


def test_the_anthropic_mask_keeps_its_longer_prefix(keyed_ctx: ServiceContext) -> None:
    assert add(keyed_ctx, ANTHROPIC_KEY, provider="anthropic").masked == "sk-ant-…stuv"


BAD_KEYS = [
    ("openai", "sk-FAKE 0123456789abcdefghij", "whitespace"),
    ("openai", "sk-FAKE0123456789abcdefghij\n", "whitespace"),
    ("openai", "pk-FAKE0123456789abcdefghij", "start with 'sk-'"),
    ("openai", "sk-short", "length"),
    ("openai", "sk-" + "a" * 300, "length"),
    ("openai", ANTHROPIC_KEY, "looks like a key for anthropic"),
    ("anthropic", OPENAI_KEY, "start with 'sk-ant-'"),
    ("google", "AIza" + "x" * 20, "length"),
    ("mistral", "sk-FAKE0123456789abcdefghijklmnopq", "looks like a key for openai"),
    ("openai", "sk-FAKE0123456789abcdéfghij", "letters, digits"),
    ("openai", "sk-FAKE0123456789abc$defghij", "letters, digits"),
    ("nonesuch", "sk-FAKE0123456789abcdefghij", "provider must be one of"),
]


@pytest.mark.parametrize(("provider", "api_key", "message"), BAD_KEYS)
def test_a_malformed_key_is_refused_clearly_without_echoing_it(
    keyed_ctx: ServiceContext, provider: str, api_key: str, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message) as refused:
        add(keyed_ctx, api_key, provider=provider)
    assert api_key.strip() not in refused.value.message
    assert api_key.strip() not in repr(refused.value.details)
    assert stored(keyed_ctx) == [] and audit_rows(keyed_ctx) == []


def test_a_base_url_on_a_private_network_is_refused_and_nothing_is_written(keyed_ctx: ServiceContext) -> None:
    with pytest.raises(UnsafeUrl, match="private"):
        add(keyed_ctx, base_url="http://192.168.1.20:11434/v1")
    assert stored(keyed_ctx) == [] and audit_rows(keyed_ctx) == []


def test_a_developer_key_needs_an_existing_developer(keyed_ctx: ServiceContext, seeded: SeedResult) -> None:
    before = audit_rows(keyed_ctx)
    with pytest.raises(NotFound):
        add(keyed_ctx, owner=KeyOwner(OwnerScope.DEVELOPER, "00000000-0000-0000-0000-000000000000"))
    assert stored(keyed_ctx) == [] and audit_rows(keyed_ctx) == before
    created = add(keyed_ctx, owner=KeyOwner(OwnerScope.DEVELOPER, seeded.developer_id))
    assert created.owner_id == seeded.developer_id


def test_deleting_a_key_really_removes_its_ciphertext(keyed_ctx: ServiceContext) -> None:
    created = add(keyed_ctx)
    vault.delete_provider_key(keyed_ctx, key_row_id=created.id, owner=None, actor=OPERATOR)
    with keyed_ctx.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(provider_keys)).scalar_one() == 0
    with pytest.raises(NotFound):
        vault.open_provider_key(keyed_ctx, created.id)
    with pytest.raises(NotFound):
        vault.delete_provider_key(keyed_ctx, key_row_id=created.id, owner=None, actor=OPERATOR)


def test_an_end_user_cannot_delete_someone_elses_key(keyed_ctx: ServiceContext) -> None:
    mine = add(keyed_ctx, owner=KeyOwner(OwnerScope.END_USER, "user-a"))
    with pytest.raises(Forbidden):
        vault.delete_provider_key(
            keyed_ctx, key_row_id=mine.id, owner=KeyOwner(OwnerScope.END_USER, "user-b"), actor=OPERATOR
        )
    assert len(stored(keyed_ctx)) == 1


def test_adds_and_deletes_are_audited_with_the_operator_and_never_the_key(keyed_ctx: ServiceContext) -> None:
    created = add(keyed_ctx)
    vault.delete_provider_key(keyed_ctx, key_row_id=created.id, owner=None, actor=OPERATOR)
    rows = audit_rows(keyed_ctx)
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("alice", "provider_key.create"),
        ("alice", "provider_key.delete"),
    ]
    text = repr(rows)
    assert OPENAI_KEY not in text and OPENAI_KEY[-8:] not in text
    assert verify_audit_chain(keyed_ctx).ok


def test_listing_filters_by_owner_and_shows_no_secret(keyed_ctx: ServiceContext) -> None:
    add(keyed_ctx)
    add(keyed_ctx, ANTHROPIC_KEY, provider="anthropic", owner=KeyOwner(OwnerScope.END_USER, "user-a"))
    assert [k.provider for k in vault.list_provider_keys(keyed_ctx, owner_scope=OwnerScope.END_USER)] == ["anthropic"]
    everything = vault.list_provider_keys(keyed_ctx)
    assert len(everything) == 2
    assert OPENAI_KEY not in repr(everything) and ANTHROPIC_KEY not in repr(everything)
    assert all(not hasattr(item, "ciphertext") for item in everything)


def test_rotation_reencrypts_every_key_batch_by_batch_while_both_keys_read(keyed_ctx: ServiceContext) -> None:
    old_key = keyed_ctx.settings.secret_key
    created = [add(keyed_ctx, f"sk-FAKE{i:04d}0123456789abcdefgh") for i in range(7)]
    rotated_ctx = replace(
        keyed_ctx,
        settings=with_settings(keyed_ctx.settings, secret_key=generate_key(), secret_key_previous=(str(old_key),)),
    )
    assert count_needing_rotation(rotated_ctx) == 7
    # Mid-rotation, readers with both keys open every row.
    assert vault.open_provider_key(rotated_ctx, created[0].id) == "sk-FAKE00000123456789abcdefgh"
    batches: list[int] = []
    result = rotate_secrets(rotated_ctx, actor=OPERATOR, batch_size=3, on_batch=batches.append)
    assert (result.rotated_count, result.remaining_count, batches) == (7, 0, [3, 3, 1])
    new_box = SecretBox.from_settings(rotated_ctx.settings)
    assert {key_id_of(str(r["ciphertext"])) for r in stored(rotated_ctx)} == {new_box.key_id}
    # With the old key removed, everything still opens.
    only_new = replace(rotated_ctx, settings=with_settings(rotated_ctx.settings, secret_key_previous=()))
    for i, item in enumerate(created):
        assert vault.open_provider_key(only_new, item.id) == f"sk-FAKE{i:04d}0123456789abcdefgh"
    # The old key alone can no longer open them.
    with pytest.raises(SecretBoxError):
        vault.open_provider_key(keyed_ctx, created[0].id)
    assert rotate_secrets(rotated_ctx, actor=OPERATOR).rotated_count == 0
    assert verify_audit_chain(rotated_ctx).ok


def test_the_rotate_command_reencrypts_and_reports(keyed_ctx: ServiceContext, db_url: str) -> None:
    from typer.testing import CliRunner

    from modelfaucet.cli.main import app as cli_app

    add(keyed_ctx)
    new_key = generate_key()
    env = {
        "DATABASE_URL": db_url,
        "MODELFAUCET_SECRET_KEY": new_key,
        "MODELFAUCET_SECRET_KEY_PREVIOUS": str(keyed_ctx.settings.secret_key),
    }
    result = CliRunner().invoke(cli_app, ["secrets", "rotate", "--batch-size", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 provider key under" in result.output and "0 remaining" in result.output
    assert new_key not in result.output and OPENAI_KEY not in result.output
    missing_old = CliRunner().invoke(
        cli_app, ["secrets", "rotate"], env={"DATABASE_URL": db_url, "MODELFAUCET_SECRET_KEY": generate_key()}
    )
    assert missing_old.exit_code == 1
    assert "MODELFAUCET_SECRET_KEY_PREVIOUS" in missing_old.output
