"""Who a web session speaks for (SPEC §21)."""

from __future__ import annotations

from enum import StrEnum


class Principal(StrEnum):
    """``operator`` signs in to /console, ``developer`` to /portal."""

    OPERATOR = "operator"
    DEVELOPER = "developer"
