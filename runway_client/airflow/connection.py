"""How a ``runway`` Airflow Connection maps to ``RunwayClient`` settings (no Airflow import).

The Connection shape is the one Education Analytics' ``edu_edfi_airflow`` already
uses, so existing connections work unchanged:

==============  =====================================================
host            the Runway API base URL, ``https://api.<instance>.runwayloader.org/api/v1``
login           the OAuth2 client id
password        the OAuth2 client secret
extra           ``auth_base_url`` (the Auth0 tenant), ``partner_code``, and optionally
                ``token_url`` (instead of ``auth_base_url``) and ``audience``; each
                may also be spelled ``extra__runway__<name>`` (Airflow 2's form)
==============  =====================================================

>>> settings = client_settings(host="https://api.x.runwayloader.org/api/v1", login="id",
...     password="secret", extras={"extra__runway__auth_base_url": "https://x.auth0.com",
...                                "partner_code": "ea"})
>>> settings["auth_base_url"], settings["partner_code"], settings["token_url"]
('https://x.auth0.com', 'ea', None)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["EXTRA_FIELDS", "client_settings", "extra_value"]

EXTRA_FIELDS: Final = ("auth_base_url", "partner_code", "token_url", "audience")
"""The connection extras read, by their bare names."""

_PREFIX: Final = "extra__runway__"


def extra_value(extras: Mapping[str, Any], name: str) -> str | None:
    """``extras[name]`` or ``extras["extra__runway__" + name]`` (that one first), as a
    string; a blank value (Airflow's form saves ``""``) counts as absent."""
    for key in (_PREFIX + name, name):
        value = extras.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def client_settings(
    *,
    host: str | None,
    login: str | None,
    password: str | None,
    extras: Mapping[str, Any],
    port: int | None = None,
    schema: str | None = None,
) -> dict[str, Any]:
    """``RunwayClient`` keyword arguments for a connection's fields.

    ``host`` is normally the whole base URL. A host without a scheme (as an
    ``AIRFLOW_CONN_...`` URI gives it) is read as ``https://<host>[:<port>]/<schema>``,
    ``schema`` defaulting to ``api/v1``. Missing values are passed on empty, so
    ``RunwayClient`` reports every missing setting at once (``InputError``).
    """
    base = (host or "").strip()
    if base and "://" not in base:
        netloc = f"{base}:{port}" if port else base
        base = f"https://{netloc}/{(schema or 'api/v1').strip('/')}"
    return {
        "runway_base_url": base,
        "auth_base_url": extra_value(extras, "auth_base_url"),
        "token_url": extra_value(extras, "token_url"),
        "audience": extra_value(extras, "audience"),
        "client_id": login or "",
        "client_secret": password or "",
        "partner_code": extra_value(extras, "partner_code") or "",
    }
