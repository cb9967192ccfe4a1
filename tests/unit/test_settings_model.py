"""The settings model (pydantic-settings): the variables it reads, how it reads them, what it refuses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelfaucet.config import ConfigError, Settings, load_settings, variable_name

SECRET = "hunter2-not-a-real-secret-but-long-enough"

# Every variable of SPEC §13 (and the ones added since) and the field it sets.
VARIABLES = {
    "DATABASE_URL": "database_url",
    "HOST": "host",
    "PORT": "port",
    "MODELFAUCET_ENV": "environment",
    "ADMIN_TOKEN": "admin_token",
    "MODELFAUCET_OPERATOR_TOKENS": "operator_tokens",
    "GATEWAY_SERVICE_TOKEN": "gateway_service_token",
    "STRIPE_SECRET_KEY": "stripe_secret_key",
    "STRIPE_WEBHOOK_SECRET": "stripe_webhook_secret",
    "STRIPE_API_BASE": "stripe_api_base",
    "STRIPE_WEBHOOK_TOLERANCE_SECONDS": "stripe_webhook_tolerance_seconds",
    "MODELFAUCET_SECRET_KEY": "secret_key",
    "MODELFAUCET_SECRET_KEY_PREVIOUS": "secret_key_previous",
    "MODELFAUCET_RATE_LIMIT_PER_MINUTE": "rate_limit_per_minute",
    "PAYOUT_THRESHOLD_USD": "payout_threshold_units",
    "PAYOUT_HOLD_DAYS": "payout_hold_days",
    "PAYOUT_REQUIRE_DISTINCT_APPROVER": "payout_require_distinct_approver",
    "SESSION_TTL_SECONDS": "session_ttl_seconds",
    "WEB_SESSION_IDLE_SECONDS": "web_session_idle_seconds",
    "WEB_SESSION_MAX_SECONDS": "web_session_max_seconds",
    "MODELFAUCET_MAX_BODY_BYTES": "max_body_bytes",
    "CORS_ORIGINS": "cors_origins",
    "RECONCILE_EVERY_SECONDS": "reconcile_every_seconds",
    "FORWARDED_ALLOW_IPS": "forwarded_allow_ips",
    "PAYOUT_MINIMUM_USD": "payout_minimum_units",
    "LOG_FORMAT": "log_format",
}


def test_every_setting_is_read_from_its_documented_variable() -> None:
    assert {variable_name(field): field for field in Settings.model_fields} == VARIABLES


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"PORT": "8080"}, "port", 8080),
        ({"PORT": " 8080\t"}, "port", 8080),
        ({"PORT": ""}, "port", 3001),
        ({"HOST": "0.0.0.0"}, "host", "0.0.0.0"),
        ({"MODELFAUCET_ENV": "  "}, "environment", "development"),
        ({"ADMIN_TOKEN": ""}, "admin_token", None),
        ({"PAYOUT_THRESHOLD_USD": "2.5"}, "payout_threshold_units", 250_000_000),
        ({"PAYOUT_REQUIRE_DISTINCT_APPROVER": "1"}, "payout_require_distinct_approver", True),
        ({"PAYOUT_REQUIRE_DISTINCT_APPROVER": "true"}, "payout_require_distinct_approver", False),
        ({"CORS_ORIGINS": "https://a.example, ,https://b.example"}, "cors_origins", ("https://a.example", "https://b.example")),
        ({"MODELFAUCET_OPERATOR_TOKENS": "alice=t1,,bob = t2"}, "operator_tokens", {"alice": "t1", "bob": "t2"}),
        ({"MODELFAUCET_OPERATOR_TOKENS": "alice=t1\u00a0"}, "operator_tokens", {"alice": "t1\u00a0"}),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.1, 192.168.0.0/16"}, "forwarded_allow_ips", ("10.0.0.1", "192.168.0.0/16")),
        ({}, "forwarded_allow_ips", ()),
        ({"MODELFAUCET_MAX_BODY_BYTES": "1024"}, "max_body_bytes", 1024),
        ({}, "payout_minimum_units", 100_000_000),
        ({"PAYOUT_MINIMUM_USD": "0.50"}, "payout_minimum_units", 50_000_000),
        ({}, "log_format", None),
        ({"LOG_FORMAT": " JSON "}, "log_format", "json"),
        ({"LOG_FORMAT": "text"}, "log_format", "text"),
    ],
)  # fmt: skip
def test_a_variable_is_read_into_its_typed_setting(env: dict[str, str], field: str, value: object) -> None:
    assert getattr(load_settings(env), field) == value


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "٣٠٠١"}, "PORT"),  # Arabic-Indic digits: int() would read 3001
        ({"PORT": "3001²"}, "PORT"),
        ({"PORT": "3_001"}, "PORT"),
        ({"PORT": "3001.0"}, "PORT"),
        ({"SESSION_TTL_SECONDS": "３６００"}, "SESSION_TTL_SECONDS"),  # full-width digits
        ({"MODELFAUCET_RATE_LIMIT_PER_MINUTE": "-1"}, "MODELFAUCET_RATE_LIMIT_PER_MINUTE"),
        ({"MODELFAUCET_MAX_BODY_BYTES": "1023"}, "MODELFAUCET_MAX_BODY_BYTES"),
        ({"PAYOUT_HOLD_DAYS": "9" * 40}, "PAYOUT_HOLD_DAYS"),
        ({"PAYOUT_THRESHOLD_USD": "١"}, "PAYOUT_THRESHOLD_USD"),
        ({"PAYOUT_THRESHOLD_USD": "0"}, "PAYOUT_THRESHOLD_USD"),  # run-mock would open sub-cent payouts
        ({"PAYOUT_MINIMUM_USD": "0"}, "PAYOUT_MINIMUM_USD"),
        ({"PAYOUT_MINIMUM_USD": "1e2"}, "PAYOUT_MINIMUM_USD"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"FORWARDED_ALLOW_IPS": "proxy.internal"}, "FORWARDED_ALLOW_IPS"),
        ({"MODELFAUCET_SECRET_KEY_PREVIOUS": f"{'a' * 43},short"}, "MODELFAUCET_SECRET_KEY_PREVIOUS"),
    ],
)
def test_a_malformed_variable_is_refused_by_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_every_malformed_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"PORT": "x", "SESSION_TTL_SECONDS": "0"})
    assert "PORT" in str(refused.value) and "SESSION_TTL_SECONDS" in str(refused.value)


@pytest.mark.parametrize(
    "env",
    [
        {"STRIPE_SECRET_KEY": f"sk_live_{SECRET}"},
        {"MODELFAUCET_SECRET_KEY": SECRET[:20]},
        {"MODELFAUCET_OPERATOR_TOKENS": SECRET},
        {"DATABASE_URL": f"mysql://user:{SECRET}@db/x"},
        {"PORT": SECRET},
    ],
)
def test_a_refusal_never_repeats_the_value(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env)
    assert SECRET[:20] not in str(refused.value)


def test_a_directly_built_setting_is_validated_without_echoing_the_value() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(stripe_secret_key=f"sk_live_{SECRET}")
    assert "live keys are refused" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_secrets_are_left_out_of_the_repr() -> None:
    settings = Settings(
        admin_token=SECRET,
        gateway_service_token=SECRET,
        stripe_webhook_secret=SECRET,
        secret_key=SECRET,
        operator_tokens={"alice": SECRET},
        database_url=f"postgresql://mf:{SECRET}@db/mf",
    )
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


def test_settings_built_directly_read_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", SECRET)
    monkeypatch.setenv("PORT", "9999")
    settings = Settings(database_url="sqlite://")
    assert (settings.admin_token, settings.port) == (None, 3001)
    assert load_settings().admin_token == SECRET


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]
