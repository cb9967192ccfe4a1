"""In-memory catalog and sessions: the same protocols and rules as ``SqlCatalog`` / ``SqlSessions``.

Unique keys are enforced as the tables' constraints enforce them (a developer per email,
an app per public id, an end user per (app, external id hash), a secret key per hash), so
a service that relies on them behaves here as it does on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from modelfaucet.domain.identity import external_user_hash, new_id
from modelfaucet.domain.outcomes import LedgerInvariantViolation
from modelfaucet.services.repositories import (
    AppRecord,
    AppSecretKeyRecord,
    DeveloperRecord,
    FeatureRecord,
    ModelPriceRecord,
    SessionRecord,
    StoredSession,
)


@dataclass
class CatalogState:
    developers: dict[str, DeveloperRecord] = field(default_factory=dict)  # by email
    apps: dict[str, AppRecord] = field(default_factory=dict)  # by public_app_id
    features: dict[tuple[str, str], FeatureRecord] = field(default_factory=dict)
    model_prices: dict[tuple[str, str], ModelPriceRecord] = field(default_factory=dict)
    end_users: dict[tuple[str, str], str] = field(default_factory=dict)  # (app id, user hash) -> id
    secret_keys: dict[str, AppSecretKeyRecord] = field(default_factory=dict)  # by key hash
    sessions: dict[str, SessionRecord] = field(default_factory=dict)  # by token hash


class MemoryCatalog:
    """Implements :class:`modelfaucet.services.repositories.CatalogRepository` in memory."""

    def __init__(self, state: CatalogState, now: datetime) -> None:
        self.state = state
        self.now = now

    def get_developer(self, developer_id: str) -> DeveloperRecord | None:
        return next((d for d in self.state.developers.values() if d.id == developer_id), None)

    def ensure_developer(self, proposed: DeveloperRecord) -> DeveloperRecord:
        return self.state.developers.setdefault(proposed.email, replace(proposed, created_at=self.now))

    def get_app(self, public_app_id: str) -> AppRecord | None:
        return self.state.apps.get(public_app_id)

    def ensure_app(self, proposed: AppRecord) -> AppRecord:
        return self.state.apps.setdefault(proposed.public_app_id, replace(proposed, created_at=self.now))

    def ensure_feature(self, proposed: FeatureRecord) -> FeatureRecord:
        key = (proposed.app_id, proposed.feature_key)
        return self.state.features.setdefault(key, replace(proposed, updated_at=self.now))

    def put_feature(
        self,
        app_id: str,
        feature_key: str,
        *,
        display_name: str,
        markup_bps: int | None,
        channel_share_bps: int | None,
        explicit_gateway_fee_units: int,
    ) -> FeatureRecord:
        found = self.state.features.get((app_id, feature_key))
        feature = FeatureRecord(
            id=new_id() if found is None else found.id,
            app_id=app_id,
            feature_key=feature_key,
            display_name=display_name,
            markup_bps=markup_bps,
            channel_share_bps=channel_share_bps,
            explicit_gateway_fee_units=explicit_gateway_fee_units,
            pricing_version=1 if found is None else found.pricing_version + 1,
            updated_at=self.now,
        )
        self.state.features[(app_id, feature_key)] = feature
        return feature

    def has_feature(self, app_id: str, feature_key: str) -> bool:
        return (app_id, feature_key) in self.state.features

    def ensure_model_price(self, proposed: ModelPriceRecord) -> ModelPriceRecord:
        key = (proposed.provider, proposed.model)
        return self.state.model_prices.setdefault(key, replace(proposed, updated_at=self.now))

    def put_model_price(
        self,
        provider: str,
        model: str,
        *,
        input_per_1m_units: int,
        output_per_1m_units: int,
        cached_per_1m_units: int,
    ) -> ModelPriceRecord:
        found = self.state.model_prices.get((provider, model))
        price = ModelPriceRecord(
            id=new_id() if found is None else found.id,
            provider=provider,
            model=model,
            input_per_1m_units=input_per_1m_units,
            output_per_1m_units=output_per_1m_units,
            cached_per_1m_units=cached_per_1m_units,
            version=1 if found is None else found.version + 1,
            updated_at=self.now,
        )
        self.state.model_prices[(provider, model)] = price
        return price

    def add_end_user(self, app_id: str, external_user_id: str) -> str | None:
        key = (app_id, external_user_hash(app_id, external_user_id))
        if key in self.state.end_users:
            return None
        self.state.end_users[key] = new_id()
        return self.state.end_users[key]

    def ensure_end_user(self, app_id: str, external_user_id: str) -> str:
        self.add_end_user(app_id, external_user_id)
        return self.state.end_users[(app_id, external_user_hash(app_id, external_user_id))]

    def add_secret_key(self, key: AppSecretKeyRecord, *, key_hash: str) -> bool:
        if key_hash in self.state.secret_keys:
            return False
        self.state.secret_keys[key_hash] = replace(key, created_at=self.now, last_used_at=None, revoked_at=None)
        return True

    def secret_keys(self, app_id: str) -> list[AppSecretKeyRecord]:
        keys = [key for key in self.state.secret_keys.values() if key.app_id == app_id]
        return sorted(keys, key=lambda key: (key.created_at, key.id))

    def get_secret_key(self, app_id: str, key_id: str) -> AppSecretKeyRecord | None:
        return next((k for k in self.state.secret_keys.values() if (k.app_id, k.id) == (app_id, key_id)), None)

    def live_secret_key(self, key_hash: str) -> AppSecretKeyRecord | None:
        key = self.state.secret_keys.get(key_hash)
        return key if key is not None and key.revoked_at is None else None

    def _replace_key(self, key_id: str, **changes: datetime) -> None:
        for key_hash, key in self.state.secret_keys.items():
            if key.id == key_id:
                self.state.secret_keys[key_hash] = replace(key, **changes)  # type: ignore[arg-type]

    def revoke_secret_key(self, key_id: str) -> bool:
        key = next((k for k in self.state.secret_keys.values() if k.id == key_id), None)
        if key is None or key.revoked_at is not None:
            return False
        self._replace_key(key_id, revoked_at=self.now)
        return True

    def mark_secret_key_used(self, key_id: str, *, unless_used_since: datetime) -> None:
        key = next((k for k in self.state.secret_keys.values() if k.id == key_id), None)
        if key is not None and (key.last_used_at is None or key.last_used_at < unless_used_since):
            self._replace_key(key_id, last_used_at=self.now)


class MemorySessions:
    """Implements :class:`modelfaucet.services.repositories.SessionRepository` in memory."""

    def __init__(self, state: CatalogState, now: datetime) -> None:
        self.state = state
        self.now = now

    def add(self, session: SessionRecord) -> None:
        if session.token_hash in self.state.sessions:
            raise LedgerInvariantViolation("duplicate session token hash")
        self.state.sessions[session.token_hash] = session

    def by_token_hash(self, token_hash: str) -> StoredSession | None:
        session = self.state.sessions.get(token_hash)
        if session is None:
            return None
        app = next(app for app in self.state.apps.values() if app.id == session.app_id)
        return StoredSession(session, app.public_app_id, app.status)
