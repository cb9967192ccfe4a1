"""The two signed-in areas of the web interface and their navigation (SPEC §21).

An :class:`Area` names its base path, the principal that may sign in to it, its session
cookie (scoped to the area's path, so a portal cookie is never even sent to /console) and
its navigation. Pages pass their area to :func:`modelfaucet.http.web.render.render`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...services.web_sessions import Principal


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    path: str


@dataclass(frozen=True, slots=True)
class Area:
    name: str  # "console" or "portal"
    title: str
    base: str  # "/console"
    principal: Principal
    cookie: str
    token_label: str
    nav: tuple[NavItem, ...]

    @property
    def sign_in_path(self) -> str:
        return f"{self.base}/sign-in"

    @property
    def sign_out_path(self) -> str:
        return f"{self.base}/sign-out"


CONSOLE = Area(
    name="console",
    title="ModelFaucet console",
    base="/console",
    principal=Principal.OPERATOR,
    cookie="mf_console",
    token_label="Operator or admin token",  # noqa: S106 - a label
    nav=(
        NavItem("Overview", "/console"),
        NavItem("Payouts", "/console/payouts"),
        NavItem("Wallets", "/console/wallets"),
        NavItem("Reconciliation", "/console/reconciliation"),
        NavItem("Top-ups", "/console/topups"),
        NavItem("Audit log", "/console/audit"),
        NavItem("Reports", "/console/reports"),
    ),
)

PORTAL = Area(
    name="portal",
    title="ModelFaucet developer portal",
    base="/portal",
    principal=Principal.DEVELOPER,
    cookie="mf_portal",
    token_label="Developer token (mf_dev_…)",  # noqa: S106 - a label
    nav=(
        NavItem("Earnings", "/portal"),
        NavItem("Payouts", "/portal/payouts"),
        NavItem("Statement", "/portal/statement"),
        NavItem("Provider keys", "/portal/keys"),
    ),
)

AREAS = {area.name: area for area in (CONSOLE, PORTAL)}
