"""Settings, read once from the environment (SPEC §13).

:class:`Settings` is a pydantic-settings model. Each field names the environment variable it
is read from (its validation alias) and validates its value: types, ranges, integers in
ASCII digits only, comma lists, the refusal of live Stripe keys, the length of encryption
keys. :func:`load_settings` reads the variables of one environment (the process's, or a
mapping in tests) — an unset or empty variable means the default — and then applies the
start-up rules of production mode. Every refusal is a :class:`ConfigError` naming the
variable; no message ever repeats a value (values may be secrets).

``Settings(...)`` built directly (tests, benchmarks) reads no environment at all: only the
values given, validated the same way, and the defaults.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .domain.money import MoneyError, parse_usd

DEFAULT_SQLITE_FILE = "modelfaucet.sqlite3"
MIN_SECRET_KEY_CHARS = 32  # same rule as adapters.secretbox.key_from_text
MIN_PRODUCTION_TOKEN_CHARS = 32
_ASCII_INTEGER = re.compile(r"-?[0-9]{1,18}")
# Trimmed around a token: ASCII whitespace only. str.strip() would also drop U+00A0 or U+0085,
# which are part of a token as written, never padding.
ASCII_BLANKS = " \t\r\n"


class ConfigError(Exception):
    """The configuration is unsafe or malformed; the service refuses to start."""


# --- how one variable's text becomes a value (each also accepts the typed value) ----------


def _integer(value: object) -> object:
    """ASCII digits only: ``int()`` would also read ``٣`` or ``1_000`` or ``+5``."""
    if isinstance(value, str):
        text = value.strip(" \t")
        if not _ASCII_INTEGER.fullmatch(text):
            raise ValueError("must be an integer (ASCII digits)")
        return int(text)
    return value


def _optional_text(value: object) -> object:
    return None if value == "" else value


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _flag(value: object) -> object:
    # Exactly "1" turns a flag on, as the variables have always been read.
    return value == "1" if isinstance(value, str) else value


def _environment_name(value: object) -> object:
    return (value.strip() or "development") if isinstance(value, str) else value


def _embedded_database_url() -> str:
    """The default: a SQLite file in the working directory (SPEC §13)."""
    return f"sqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}"


def _database_url(value: object) -> object:
    return _embedded_database_url() if value == "" else value


def _supported_database(url: str) -> str:
    if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    return url


def _usd_units(value: object) -> object:
    # Text is the variable (USD, "1.00000000"); an int is already in units. The message
    # names no variable: describe() puts the variable's name in front of it.
    if isinstance(value, str):
        try:
            return parse_usd(value, field="value")
        except MoneyError as exc:
            raise ValueError(str(exc).removeprefix("value ")) from None
    return value


def _log_format(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _operator_tokens(value: object) -> object:
    if not isinstance(value, str):
        return value
    operators: dict[str, str] = {}
    for raw_item in value.split(","):
        item = raw_item.strip(ASCII_BLANKS)
        if not item:
            continue
        name, sep, token = (part.strip(ASCII_BLANKS) for part in item.partition("="))
        if not sep or not name or not token:
            raise ValueError("must look like 'alice=token1,bob=token2'")
        operators[name] = token
    return operators


def _test_mode_key(key: str | None) -> str | None:
    if key is not None and not key.startswith(("sk_test_", "rk_test_")):
        raise ValueError("must be a test-mode key (sk_test_…); live keys are refused")
    return key


def _encryption_key(key: str | None) -> str | None:
    if key is not None and len(key.strip()) < MIN_SECRET_KEY_CHARS:
        raise ValueError("must be base64url of 32 bytes or at least 32 characters")
    return key


def _encryption_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    for key in keys:
        _encryption_key(key)
    return keys


def _proxy_addresses(entries: tuple[str, ...]) -> tuple[str, ...]:
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError("must list IP addresses or networks (such as 10.0.0.0/8), or *") from None
    return entries


Integer = Annotated[int, BeforeValidator(_integer)]
OptionalText = Annotated[str | None, BeforeValidator(_optional_text)]
TextList = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]


class Settings(BaseSettings):
    """Every setting, its variable (``validation_alias``) and its default.

    Secrets, and the database URL (it may carry a password), are left out of ``repr()``.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        populate_by_name=True,  # Settings(port=…) as well as the variable's name
        extra="forbid",
        hide_input_in_errors=True,  # a value may be a secret: never echo it
    )

    database_url: Annotated[str, BeforeValidator(_database_url), AfterValidator(_supported_database)] = Field(
        default_factory=_embedded_database_url,
        validation_alias="DATABASE_URL",
        repr=False,
    )
    host: str = Field("127.0.0.1", validation_alias="HOST")
    port: Integer = Field(3001, ge=1, le=65535, validation_alias="PORT")
    environment: Annotated[Literal["development", "production"], BeforeValidator(_environment_name)] = Field(
        "development", validation_alias="MODELFAUCET_ENV"
    )
    admin_token: OptionalText = Field(None, validation_alias="ADMIN_TOKEN", repr=False)
    operator_tokens: Annotated[Mapping[str, str], BeforeValidator(_operator_tokens)] = Field(
        default_factory=dict, validation_alias="MODELFAUCET_OPERATOR_TOKENS", repr=False
    )
    gateway_service_token: OptionalText = Field(None, validation_alias="GATEWAY_SERVICE_TOKEN", repr=False)
    stripe_secret_key: Annotated[OptionalText, AfterValidator(_test_mode_key)] = Field(
        None, validation_alias="STRIPE_SECRET_KEY", repr=False
    )
    stripe_webhook_secret: OptionalText = Field(None, validation_alias="STRIPE_WEBHOOK_SECRET", repr=False)
    stripe_api_base: OptionalText = Field(None, validation_alias="STRIPE_API_BASE")
    stripe_webhook_tolerance_seconds: Integer = Field(300, ge=1, validation_alias="STRIPE_WEBHOOK_TOLERANCE_SECONDS")
    secret_key: Annotated[OptionalText, AfterValidator(_encryption_key)] = Field(
        None, validation_alias="MODELFAUCET_SECRET_KEY", repr=False
    )
    secret_key_previous: Annotated[TextList, AfterValidator(_encryption_keys)] = Field(
        (), validation_alias="MODELFAUCET_SECRET_KEY_PREVIOUS", repr=False
    )
    rate_limit_per_minute: Integer = Field(600, ge=0, validation_alias="MODELFAUCET_RATE_LIMIT_PER_MINUTE")
    payout_threshold_units: Annotated[int, BeforeValidator(_usd_units)] = Field(
        100_000_000, gt=0, validation_alias="PAYOUT_THRESHOLD_USD"
    )
    # No payout below this amount is ever opened, whatever threshold a run-mock call names.
    payout_minimum_units: Annotated[int, BeforeValidator(_usd_units)] = Field(
        100_000_000, gt=0, validation_alias="PAYOUT_MINIMUM_USD"
    )
    payout_hold_days: Integer = Field(0, ge=0, validation_alias="PAYOUT_HOLD_DAYS")
    payout_require_distinct_approver: Annotated[bool, BeforeValidator(_flag)] = Field(
        False, validation_alias="PAYOUT_REQUIRE_DISTINCT_APPROVER"
    )
    session_ttl_seconds: Integer = Field(3600, ge=1, validation_alias="SESSION_TTL_SECONDS")
    # /console and /portal sessions (SPEC §21): ended after this long without a request, and
    # in any case this long after signing in.
    web_session_idle_seconds: Integer = Field(1800, ge=60, validation_alias="WEB_SESSION_IDLE_SECONDS")
    web_session_max_seconds: Integer = Field(43_200, ge=60, validation_alias="WEB_SESSION_MAX_SECONDS")
    max_body_bytes: Integer = Field(1_048_576, ge=1024, validation_alias="MODELFAUCET_MAX_BODY_BYTES")
    cors_origins: TextList = Field((), validation_alias="CORS_ORIGINS")
    # Seconds between the service's own reconciliation runs (metrics); 0, the default: never.
    reconcile_every_seconds: Integer = Field(0, ge=0, validation_alias="RECONCILE_EVERY_SECONDS")
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (a reverse proxy in front
    # of the API): IP addresses or networks, comma separated. None by default: the client
    # address is the socket peer, for uvicorn and for the rate limiter alike.
    forwarded_allow_ips: Annotated[TextList, AfterValidator(_proxy_addresses)] = Field(
        (), validation_alias="FORWARDED_ALLOW_IPS"
    )
    # "text" or "json" (one object per line); unset: json in production, text otherwise.
    log_format: Annotated[Literal["text", "json"] | None, BeforeValidator(_log_format)] = Field(
        None, validation_alias="LOG_FORMAT"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the values given: the environment is read by load_settings(), once, on purpose.
        return (init_settings,)

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json" or (self.log_format is None and self.production)

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
        if not self.gateway_service_token:
            notes.append("GATEWAY_SERVICE_TOKEN is not set: usage reports (POST /v1/usage/events) answer 401.")
        return notes


def variable_name(field_name: str) -> str:
    """The environment variable a setting is read from (``port`` → ``PORT``)."""
    alias = Settings.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else field_name.upper()


class EnvironmentSource(PydanticBaseSettingsSource):
    """The settings' variables in one environment; an unset or empty variable is left out."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        name = variable_name(field_name)
        return self.environ.get(name), name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, name, _ = self.get_field_value(field, field_name)
            if value:
                values[name] = value
        return values


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; raise :class:`ConfigError` naming what is wrong."""
    env = os.environ if environ is None else environ
    try:
        settings = Settings.model_validate(EnvironmentSource(Settings, env)())
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None
    _check_production(settings)
    return settings


def describe(error: ValidationError) -> str:
    """One line per refused setting, naming its variable, never its value."""
    problems = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        location = str(item["loc"][0]) if item["loc"] else ""
        name = variable_name(location) if location in Settings.model_fields else location
        message = str(item["msg"]).removeprefix("Value error, ").rstrip(".")
        if not name or message.startswith(name):
            problems.append(message)
        else:  # "PORT must be …" for our own rules, "PORT: Input should be …" for pydantic's
            problems.append(f"{name} {message}" if message[:1].islower() else f"{name}: {message}")
    return "; ".join(problems) + "."


def _check_production(settings: Settings) -> None:
    """Production mode refuses to start without its safety settings."""
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
    short = [name for name, token in settings.operator_credentials() if len(token) < MIN_PRODUCTION_TOKEN_CHARS]
    if short:
        raise ConfigError("production mode requires admin/operator tokens of at least 32 characters.")
    if "*" in settings.cors_origins:
        raise ConfigError("production mode refuses wildcard CORS_ORIGINS.")
