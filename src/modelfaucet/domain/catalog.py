"""The catalog's rules (SPEC §15): what its keys look like and the statuses of its rows.

Pure checks, no I/O: the services call them before they open a unit of work.
"""

from __future__ import annotations

import re
from enum import StrEnum

from .outcomes import InvalidRequest

# Public ids, feature keys and provider names: what may appear in a URL path.
PUBLIC_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_MODEL_NAME_LENGTH = 128
MAX_EXTERNAL_USER_ID_LENGTH = 256
DEFAULT_APP_MARKUP_BPS = 3000

# The catalog's refusal messages: one constant each, for every module that refuses so.
APP_NOT_FOUND = "App was not found."
APP_NOT_ACTIVE = "App was not found or is not active."
DEVELOPER_NOT_FOUND = "Developer was not found."
FEATURE_NOT_FOUND = "Feature was not found for this app."


class CatalogStatus(StrEnum):
    """A developer's or an app's status: only an active app opens sessions and is billed."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


def check_public_key(value: str, field: str) -> None:
    if not PUBLIC_KEY_PATTERN.fullmatch(value):
        raise InvalidRequest(
            f"{field} must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit.",
            details={"field": field},
        )


def check_model_name(model: str) -> None:
    if not model or len(model) > MAX_MODEL_NAME_LENGTH or any(ch.isspace() or not ch.isprintable() for ch in model):
        raise InvalidRequest(
            f"model must be 1-{MAX_MODEL_NAME_LENGTH} printable characters without spaces.",
            details={"field": "model"},
        )


def check_external_user_id(external_user_id: str) -> None:
    if not external_user_id or len(external_user_id) > MAX_EXTERNAL_USER_ID_LENGTH:
        raise InvalidRequest(
            f"external_user_id must be 1 to {MAX_EXTERNAL_USER_ID_LENGTH} characters.",
            details={"field": "external_user_id"},
        )
