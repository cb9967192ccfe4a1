"""Production mode refuses unsafe settings at start-up (SPEC §13, issue 6 hardening)."""

from __future__ import annotations

import pytest

from modelfaucet.config import ConfigError, load_settings

SAFE_PRODUCTION = {
    "MODELFAUCET_ENV": "production",
    "DATABASE_URL": "postgresql://mf@127.0.0.1/mf",
    "ADMIN_TOKEN": "a" * 32,
    "STRIPE_WEBHOOK_SECRET": "whsec_test_not_a_real_secret",
    "MODELFAUCET_SECRET_KEY": "k" * 43,
    "STRIPE_SECRET_KEY": "sk_test_not_a_real_key",
}


def test_a_safe_production_configuration_starts() -> None:
    settings = load_settings(SAFE_PRODUCTION)
    assert settings.production


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ADMIN_TOKEN": "a" * 31}, "at least 32 characters"),
        ({"MODELFAUCET_OPERATOR_TOKENS": "alice=short-token"}, "at least 32 characters"),
        ({"ADMIN_TOKEN": ""}, "ADMIN_TOKEN"),
        ({"MODELFAUCET_SECRET_KEY": ""}, "MODELFAUCET_SECRET_KEY"),
        ({"STRIPE_WEBHOOK_SECRET": ""}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_SECRET_KEY": "sk_live_not_a_real_key"}, "live keys are refused"),
        ({"STRIPE_SECRET_KEY": "rk_live_not_a_real_key"}, "live keys are refused"),
        ({"CORS_ORIGINS": "*"}, "wildcard"),
        ({"CORS_ORIGINS": "https://app.example,*"}, "wildcard"),
        ({"MODELFAUCET_SECRET_KEY": "too-short"}, "MODELFAUCET_SECRET_KEY"),
    ],
)
def test_production_refuses_an_unsafe_setting(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        load_settings({**SAFE_PRODUCTION, **change})
    for value in change.values():
        if len(value) > 12:
            assert value not in str(refused.value)


def test_development_still_refuses_a_live_stripe_key() -> None:
    with pytest.raises(ConfigError, match="live keys"):
        load_settings({"STRIPE_SECRET_KEY": "sk_live_not_a_real_key"})


def test_development_accepts_missing_secrets() -> None:
    settings = load_settings({})
    assert not settings.production
    assert settings.secret_key is None


def test_the_rate_limit_is_configurable_and_can_be_disabled() -> None:
    assert load_settings({}).rate_limit_per_minute > 0
    assert load_settings({"MODELFAUCET_RATE_LIMIT_PER_MINUTE": "0"}).rate_limit_per_minute == 0
    assert load_settings({"MODELFAUCET_RATE_LIMIT_PER_MINUTE": "5"}).rate_limit_per_minute == 5


def test_previous_secret_keys_are_read_as_a_list() -> None:
    settings = load_settings({"MODELFAUCET_SECRET_KEY_PREVIOUS": f"{'a' * 43}, {'b' * 43}"})
    assert settings.secret_key_previous == ("a" * 43, "b" * 43)
