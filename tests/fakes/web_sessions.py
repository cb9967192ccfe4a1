"""In-memory web sessions: the same protocol and rules as ``SqlWebSessions``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from modelfaucet.domain.timestamps import as_utc
from modelfaucet.services.repositories import WebSessionRecord


@dataclass
class WebSessionState:
    sessions: dict[str, WebSessionRecord] = field(default_factory=dict)  # by id hash


class MemoryWebSessions:
    """Implements :class:`modelfaucet.services.repositories.WebSessionRepository`."""

    def __init__(self, state: WebSessionState, now: datetime) -> None:
        self.state = state
        self.now = now

    def add(self, session: WebSessionRecord) -> None:
        if session.id_hash in self.state.sessions:
            raise ValueError("duplicate web session id")
        self.state.sessions[session.id_hash] = session

    def get(self, id_hash: str) -> WebSessionRecord | None:
        return self.state.sessions.get(id_hash)

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
