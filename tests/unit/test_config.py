"""Settings are read once from the environment and refuse unsafe or malformed values."""

from __future__ import annotations

import pytest

from modelfaucet.config import ConfigError, load_settings


def test_defaults_are_the_embedded_development_setup() -> None:
    settings = load_settings({})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("modelfaucet.sqlite3")
    assert (settings.host, settings.port) == ("127.0.0.1", 3001)
    assert settings.environment == "development"
    assert settings.admin_token is None
    assert settings.payout_threshold_units == 100_000_000
    assert settings.session_ttl_seconds == 3600
    assert any("STRIPE_WEBHOOK_SECRET" in warning for warning in settings.warnings())


def test_an_unset_gateway_token_is_warned_about_at_start_up_and_a_set_one_is_not() -> None:
    unset = load_settings({})
    assert any("GATEWAY_SERVICE_TOKEN is not set" in warning for warning in unset.warnings())
    configured = load_settings({"GATEWAY_SERVICE_TOKEN": "gw-token"})
    assert not any("GATEWAY_SERVICE_TOKEN" in warning for warning in configured.warnings())


@pytest.mark.parametrize(
    ("env", "json_logs"),
    [
        ({}, False),
        ({"LOG_FORMAT": "json"}, True),
        ({"MODELFAUCET_ENV": "production"}, True),
        ({"MODELFAUCET_ENV": "production", "LOG_FORMAT": "text"}, False),
    ],
)
def test_log_format_json_switches_to_json_lines_and_production_defaults_to_them(
    env: dict[str, str], json_logs: bool
) -> None:
    production = {"ADMIN_TOKEN": "a" * 32, "STRIPE_WEBHOOK_SECRET": "whsec_x", "MODELFAUCET_SECRET_KEY": "k" * 43}
    assert load_settings({**env, **production}).json_logs is json_logs


def test_named_operators_are_parsed() -> None:
    settings = load_settings({"MODELFAUCET_OPERATOR_TOKENS": "alice=tok1, bob=tok2", "ADMIN_TOKEN": "root"})
    assert dict(settings.operator_tokens) == {"alice": "tok1", "bob": "tok2"}
    assert ("admin", "root") in settings.operator_credentials()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODELFAUCET_ENV": "staging"}, "MODELFAUCET_ENV"),
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"SESSION_TTL_SECONDS": "0"}, "SESSION_TTL_SECONDS"),
        ({"PAYOUT_THRESHOLD_USD": "1e2"}, "PAYOUT_THRESHOLD_USD"),
        ({"PAYOUT_THRESHOLD_USD": "-1"}, "PAYOUT_THRESHOLD_USD"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"MODELFAUCET_OPERATOR_TOKENS": "alice"}, "MODELFAUCET_OPERATOR_TOKENS"),
        ({"STRIPE_SECRET_KEY": "sk_live_notreal"}, "test-mode key"),
    ],
)
def test_malformed_settings_are_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_production_names_every_missing_safety_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"MODELFAUCET_ENV": "production"})
    for name in ("ADMIN_TOKEN", "STRIPE_WEBHOOK_SECRET", "MODELFAUCET_SECRET_KEY"):
        assert name in str(caught.value)


def test_production_starts_with_the_safe_settings() -> None:
    settings = load_settings(
        {
            "MODELFAUCET_ENV": "production",
            "ADMIN_TOKEN": "a" * 32,
            "STRIPE_WEBHOOK_SECRET": "whsec_test_not_real",
            "MODELFAUCET_SECRET_KEY": "k" * 44,
        }
    )
    assert settings.production
