"""In-memory web sessions: the same protocol and rules as ``SqlWebSessions``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from modelfaucet.domain.timestamps import as_utc
from modelfaucet.services.repositories import WebSessionRecord
from tests.fakes.developers import DeveloperAccessState, MemoryDeveloperAccess


@dataclass
class WebSessionState:
    sessions: dict[str, WebSessionRecord] = field(default_factory=dict)  # by id hash


class MemoryWebSessions:
    """Implements :class:`modelfaucet.services.repositories.WebSessionRepository`."""

    def __init__(self, state: WebSessionState, now: datetime, developers: MemoryDeveloperAccess) -> None:
        self.state = state
        self.now = now
        self.developers = developers

    def add(self, session: WebSessionRecord) -> None:
        if session.id_hash in self.state.sessions:
            raise ValueError("duplicate web session id")
        self.state.sessions[session.id_hash] = session

    def get(self, id_hash: str) -> WebSessionRecord | None:
        session = self.state.sessions.get(id_hash)
        if session is None:
            return None
        return replace(session, developer_token_live=self._token_live(session))

    def _token_live(self, session: WebSessionRecord) -> bool:
        tokens: DeveloperAccessState = self.developers.state
        token = next((t for t in tokens.tokens.values() if t.id == session.developer_token_id), None)
        return (
            token is not None
            and token.developer_id == session.subject
            and token.revoked_at is None
            and self.developers.developer_is_active(token.developer_id)
        )

    def touch(self, id_hash: str) -> None:
        session = self.state.sessions.get(id_hash)
        if session is not None:
            self.state.sessions[id_hash] = replace(session, last_seen_at=self.now)

    def delete(self, id_hash: str) -> bool:
        return self.state.sessions.pop(id_hash, None) is not None

    def delete_idle(self, *, last_seen_before: datetime) -> int:
        gone = [
            key
            for key, s in self.state.sessions.items()
            if as_utc(s.last_seen_at) < as_utc(last_seen_before) or as_utc(s.expires_at) <= as_utc(self.now)
        ]
        for key in gone:
            del self.state.sessions[key]
        return len(gone)
