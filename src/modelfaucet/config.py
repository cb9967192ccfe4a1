"""Settings, read once from the environment (SPEC §13)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .domain.money import MoneyError, parse_usd

DEFAULT_SQLITE_FILE = "modelfaucet.sqlite3"


class ConfigError(Exception):
    """The configuration is unsafe or malformed; the service refuses to start."""


@dataclass(frozen=True)
class Settings:
    database_url: str = f"sqlite:///{DEFAULT_SQLITE_FILE}"
    host: str = "127.0.0.1"
    port: int = 3001
    environment: str = "development"
    admin_token: str | None = None
    operator_tokens: Mapping[str, str] = field(default_factory=dict)
    gateway_service_token: str | None = None
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    stripe_webhook_tolerance_seconds: int = 300
    secret_key: str | None = None
    secret_key_previous: tuple[str, ...] = ()
    rate_limit_per_minute: int = 600
    payout_threshold_units: int = 100_000_000
    payout_hold_days: int = 0
    payout_require_distinct_approver: bool = False
    session_ttl_seconds: int = 3600
    max_body_bytes: int = 1_048_576
    cors_origins: tuple[str, ...] = ()

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def operator_credentials(self) -> list[tuple[str, str]]:
        """(operator name, token) pairs accepted on admin routes."""
        pairs = [(name, token) for name, token in self.operator_tokens.items()]
        if self.admin_token:
            pairs.append(("admin", self.admin_token))
        return pairs

    def warnings(self) -> list[str]:
        notes = []
        if not self.stripe_webhook_secret:
            notes.append("STRIPE_WEBHOOK_SECRET is not set: unsigned Stripe webhooks are accepted (development only).")
        if not self.admin_token and not self.operator_tokens:
            notes.append("ADMIN_TOKEN is not set: admin routes answer 401.")
        return notes


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise :class:`ConfigError` naming what is wrong."""
    env = os.environ if environ is None else environ
    environment = env.get("MODELFAUCET_ENV", "development").strip() or "development"
    if environment not in {"development", "production"}:
        raise ConfigError("MODELFAUCET_ENV must be 'development' or 'production'.")

    database_url = env.get("DATABASE_URL") or f"sqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}"
    if not database_url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
        raise ConfigError("DATABASE_URL must be a sqlite:/// or postgresql:// URL.")

    try:
        threshold = parse_usd(env.get("PAYOUT_THRESHOLD_USD", "1.00000000"), field="PAYOUT_THRESHOLD_USD")
    except MoneyError as exc:
        raise ConfigError(str(exc)) from None

    settings = Settings(
        database_url=database_url,
        host=env.get("HOST", "127.0.0.1"),
        port=_int(env, "PORT", 3001, minimum=1, maximum=65535),
        environment=environment,
        admin_token=env.get("ADMIN_TOKEN") or None,
        operator_tokens=_operator_tokens(env.get("MODELFAUCET_OPERATOR_TOKENS", "")),
        gateway_service_token=env.get("GATEWAY_SERVICE_TOKEN") or None,
        stripe_secret_key=env.get("STRIPE_SECRET_KEY") or None,
        stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET") or None,
        stripe_api_base=env.get("STRIPE_API_BASE") or None,
        stripe_webhook_tolerance_seconds=_int(env, "STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300, minimum=1),
        secret_key=env.get("MODELFAUCET_SECRET_KEY") or None,
        secret_key_previous=tuple(
            k.strip() for k in env.get("MODELFAUCET_SECRET_KEY_PREVIOUS", "").split(",") if k.strip()
        ),
        rate_limit_per_minute=_int(env, "MODELFAUCET_RATE_LIMIT_PER_MINUTE", 600, minimum=0),
        payout_threshold_units=threshold,
        payout_hold_days=_int(env, "PAYOUT_HOLD_DAYS", 0, minimum=0),
        payout_require_distinct_approver=env.get("PAYOUT_REQUIRE_DISTINCT_APPROVER", "0") == "1",
        session_ttl_seconds=_int(env, "SESSION_TTL_SECONDS", 3600, minimum=1),
        max_body_bytes=_int(env, "MODELFAUCET_MAX_BODY_BYTES", 1_048_576, minimum=1024),
        cors_origins=tuple(o.strip() for o in env.get("CORS_ORIGINS", "").split(",") if o.strip()),
    )
    _check_safety(settings)
    return settings


def _check_safety(settings: Settings) -> None:
    key = settings.stripe_secret_key
    if key is not None and not key.startswith(("sk_test_", "rk_test_")):
        raise ConfigError("STRIPE_SECRET_KEY must be a test-mode key (sk_test_…); live keys are refused.")
    for secret in (settings.secret_key, *settings.secret_key_previous):
        # Same rule as adapters.secretbox.key_from_text: base64url of 32 bytes or a passphrase of ≥ 32 chars.
        if secret is not None and len(secret.strip()) < 32:
            raise ConfigError(
                "MODELFAUCET_SECRET_KEY(_PREVIOUS) must be base64url of 32 bytes or at least 32 characters."
            )
    if not settings.production:
        return
    missing = []
    if not settings.admin_token and not settings.operator_tokens:
        missing.append("ADMIN_TOKEN")
    if not settings.stripe_webhook_secret:
        missing.append("STRIPE_WEBHOOK_SECRET")
    if not settings.secret_key:
        missing.append("MODELFAUCET_SECRET_KEY")
    if missing:
        raise ConfigError(f"production mode refuses to start without: {', '.join(missing)}.")
    short = [name for name, token in settings.operator_credentials() if len(token) < 32]
    if short:
        raise ConfigError("production mode requires admin/operator tokens of at least 32 characters.")
    if "*" in settings.cors_origins:
        raise ConfigError("production mode refuses wildcard CORS_ORIGINS.")


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer.") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(f"{name} is out of range.")
    return value


def _operator_tokens(raw: str) -> dict[str, str]:
    operators: dict[str, str] = {}
    for raw_item in raw.split(","):
        item = raw_item.strip()
        if not item:
            continue
        name, sep, token = item.partition("=")
        if not sep or not name.strip() or not token.strip():
            raise ConfigError("MODELFAUCET_OPERATOR_TOKENS must look like 'alice=token1,bob=token2'.")
        operators[name.strip()] = token.strip()
    return operators
