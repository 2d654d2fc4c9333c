"""Secrets stay out of text."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import assume, given

from runway_client._redaction import Secret, redact_text, redact_url
from runway_client.testing.strategies import secrets


@given(secrets)
def test_a_secret_never_shows_itself(value: str) -> None:
    assume(value not in "Secret('********')")  # the mask itself is no leak
    secret = Secret(value)
    for text in (repr(secret), str(secret), f"{secret}", repr([secret]), repr({"k": secret})):
        assert value not in text
    assert secret.reveal() == value
    assert secret == Secret(value)


def test_a_secret_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret("abc"))


def test_redact_url_masks_credentials_but_keeps_the_rest() -> None:
    url = (
        "https://bucket.s3.amazonaws.com/ea/ea/u/INPUT_FILE/my%20file.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIA%2F20261129&X-Amz-Security-Token=FQo&X-Amz-Signature=abcdef0123"
    )
    shown = redact_url(url)
    assert "AKIA" not in shown
    assert "FQo" not in shown
    assert "abcdef0123" not in shown
    assert shown.startswith(
        "https://bucket.s3.amazonaws.com/ea/ea/u/INPUT_FILE/my%20file.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    )
    assert "X-Amz-Signature=REDACTED" in shown


def test_redact_url_drops_userinfo() -> None:
    assert redact_url("https://user:pw@host/p") == "https://host/p"


def test_redact_text_cleans_urllib3_style_messages() -> None:
    text = (
        "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: "
        "/b/k.csv?X-Amz-Signature=feedface (Caused by NewConnectionError('refused'))"
        " Authorization: Bearer eyJtoken.payload.sig client_secret=hunter2hunter2"
    )
    shown = redact_text(text, secrets=("hunter2hunter2",))
    for leaked in ("feedface", "eyJtoken", "hunter2hunter2"):
        assert leaked not in shown
    assert "Max retries exceeded" in shown
