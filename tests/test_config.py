"""Connection settings: URL rules, audience, token URL, the environment."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from runway_client._config import config_from_env, make_config
from runway_client._errors import InputError
from runway_client.testing.strategies import base_urls

GOOD: dict[str, Any] = {
    "runway_base_url": "https://api.x-prod.runwayloader.org/api/v1",
    "auth_base_url": "https://x.prod.us.auth0.com",
    "client_id": "cid",
    "client_secret": "s3cr3t-value",
    "partner_code": "ea",
}


def test_good_settings_give_token_url_and_audience() -> None:
    config = make_config(**GOOD).unwrap()
    assert config.token_url == "https://x.prod.us.auth0.com/oauth/token"
    assert config.audience == "https://api.x-prod.runwayloader.org"
    assert config.runway_base_url == GOOD["runway_base_url"]
    assert "s3cr3t-value" not in repr(config)


@given(base_urls())
def test_every_base_url_spelling_normalises(case: tuple[str, str, str]) -> None:
    spelled, base, audience = case
    config = make_config(**{**GOOD, "runway_base_url": spelled}).unwrap()
    assert config.runway_base_url == base
    assert config.audience == audience
    assert not config.audience.endswith("/")


def test_auth_base_url_with_trailing_slash_and_explicit_token_url() -> None:
    assert make_config(**{**GOOD, "auth_base_url": "https://a.auth0.com/"}).unwrap().token_url == (
        "https://a.auth0.com/oauth/token"
    )
    keycloak = "https://kc.example.org/realms/runway/protocol/openid-connect/token"
    config = make_config(**{**GOOD, "auth_base_url": None, "token_url": keycloak}).unwrap()
    assert config.token_url == keycloak


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("runway_base_url", "http://api.x.org/api/v1", "must use https"),
        ("runway_base_url", "https://api.x.org/v1", "must end in /api/v<N>"),
        ("runway_base_url", "api.x.org/api/v1", "absolute http(s) URL"),
        ("runway_base_url", "https://api.x.org/api/v1?x=1", "query or fragment"),
        ("runway_base_url", "https://user:pw@api.x.org/api/v1", "credentials"),
        ("runway_base_url", "ftp://api.x.org/api/v1", "absolute http(s) URL"),
        ("auth_base_url", "http://a.auth0.com", "must use https"),
        ("auth_base_url", None, "give auth_base_url"),
        ("client_id", "", "client_id must be a non-empty string"),
        ("partner_code", "  ", "partner_code must be a non-empty string"),
        ("client_secret", "", "client_secret must be a non-empty string"),
    ],
)
def test_bad_settings_name_the_setting(field: str, value: object, says: str) -> None:
    error = make_config(**{**GOOD, field: value}).failure()
    assert isinstance(error, InputError)
    assert says in error.message
    assert "s3cr3t-value" not in str(error)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.8.9.10"])
def test_plain_http_is_allowed_for_loopback(host: str) -> None:
    config = make_config(
        **{
            **GOOD,
            "runway_base_url": f"http://{host}:8080/api/v1",
            "auth_base_url": f"http://{host}:9",
        }
    )
    assert config.unwrap().audience == f"http://{host}:8080"


def test_every_problem_is_reported_together() -> None:
    error = make_config(
        **{**GOOD, "client_id": "", "partner_code": "", "connect_timeout": 0}
    ).failure()
    assert isinstance(error, InputError)
    assert len(error.problems) == 3


def test_config_from_env_reads_runway_variables_and_flags_win() -> None:
    env = {
        "RUNWAY_BASE_URL": GOOD["runway_base_url"],
        "RUNWAY_AUTH_BASE_URL": GOOD["auth_base_url"],
        "RUNWAY_CLIENT_ID": "from-env",
        "RUNWAY_CLIENT_SECRET": "env-secret-1234",
        "RUNWAY_PARTNER": "ea",
    }
    config = config_from_env(env, client_id="from-flag", partner_code=None).unwrap()
    assert config.client_id == "from-flag"
    assert config.partner_code == "ea"
    assert config.client_secret.reveal() == "env-secret-1234"


def test_the_audience_is_a_setting_of_the_environment_the_flags_and_the_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An instance whose audience is not its origin got 401 on every command (issue 15)."""
    from runway_client._manifest import SETTINGS_FIELDS
    from runway_client.cli import _effective_config, _import_commands, _parser

    env = {
        "RUNWAY_BASE_URL": GOOD["runway_base_url"],
        "RUNWAY_AUTH_BASE_URL": GOOD["auth_base_url"],
        "RUNWAY_CLIENT_ID": "id",
        "RUNWAY_CLIENT_SECRET": "env-secret-1234",
        "RUNWAY_PARTNER": "ea",
    }
    assert config_from_env(env).unwrap().audience == "https://api.x-prod.runwayloader.org"
    assert (
        config_from_env({**env, "RUNWAY_AUDIENCE": "https://env.example"}).unwrap().audience
        == "https://env.example"
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _import_commands()
    args = _parser().parse_args(["verify", "--audience", "https://flag.example"])
    assert _effective_config(args).audience == "https://flag.example"
    assert "audience" in SETTINGS_FIELDS  # settings files and manifests take it too


def test_config_from_env_names_missing_variables() -> None:
    error = config_from_env({}).failure()
    assert isinstance(error, InputError)
    for variable in (
        "RUNWAY_BASE_URL",
        "RUNWAY_CLIENT_ID",
        "RUNWAY_CLIENT_SECRET",
        "RUNWAY_PARTNER",
        "RUNWAY_TOKEN_URL",
    ):
        assert variable in error.message


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"verify": False}, "verify=False would turn off TLS certificate checks"),
        ({"verify": ""}, "verify must be True or the path"),
        ({"verify": 0}, "verify must be True or the path"),
        ({"verify": "/no/such/ca.pem"}, "verify must be True or the path"),
        ({"read_timeout": float("inf")}, "read_timeout must be a number of seconds"),
        ({"connect_timeout": float("nan")}, "connect_timeout must be a number of seconds"),
        ({"token_url": "https://idp.example.org/token"}, "not both"),
        ({"partner_code": "ea read:jobs"}, "must not contain spaces"),
        ({"audience": "https://api.x-prod.runwayloader.org/"}, "trailing slash"),
        ({"runway_base_url": "https://api x.org/api/v1"}, "must not contain spaces"),
        ({"runway_base_url": "https://api.x.org:0/api/v1"}, "port 0"),
    ],
)
def test_settings_that_would_fail_later_or_quietly_are_refused(
    changes: dict[str, object], says: str
) -> None:
    error = make_config(**{**GOOD, **changes}).failure()
    assert isinstance(error, InputError)
    assert says in error.message


def test_a_ca_bundle_path_that_exists_is_accepted(tmp_path: Any) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert make_config(**{**GOOD, "verify": str(bundle)}).unwrap().verify == str(bundle)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:PASSWORD123@api.x.org/api/v1?x=1",
        "ftp://user:PASSWORD123@api.x.org/api/v1",
        "https://user:PASSWORD123@api.x.org:99999/api/v1",
        "https://api.x.org/v1?client_secret=PASSWORD123",
    ],
)
def test_settings_errors_never_show_credentials_written_into_a_url(url: str) -> None:
    error = make_config(**{**GOOD, "runway_base_url": url}).failure()
    assert "PASSWORD123" not in str(error)
    assert "PASSWORD123" not in repr(error)
