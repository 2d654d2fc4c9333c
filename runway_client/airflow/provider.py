"""The provider's description for Airflow (the ``apache_airflow_provider`` entry point).

Imports nothing from Airflow, so Airflow can read it while it starts.
"""

from __future__ import annotations

from typing import Any

from runway_client import __version__
from runway_client.airflow.connection import EXTRA_FIELDS

__all__ = ["get_provider_info"]

_LABELS = {
    "auth_base_url": "Auth base URL (the Auth0 tenant, e.g. https://<name>.us.auth0.com)",
    "partner_code": "Partner code",
    "token_url": "Token URL (instead of the auth base URL, for another OIDC issuer)",
    "audience": "Audience (default: the Runway instance's origin)",
}


def get_provider_info() -> dict[str, Any]:
    """Name, version, the ``runway`` connection type (its hook, form fields and UI labels).

    >>> get_provider_info()["connection-types"][0]["connection-type"]
    'runway'
    """
    return {
        "package-name": "runway-client",
        "name": "Runway (Education Analytics)",
        "description": "Load assessment files into Ed-Fi ODSs through Runway's external API.",
        "versions": [__version__],
        "hooks": [
            {"integration-name": "Runway", "python-modules": ["runway_client.airflow.hooks"]}
        ],
        "operators": [
            {"integration-name": "Runway", "python-modules": ["runway_client.airflow.operators"]}
        ],
        "sensors": [
            {"integration-name": "Runway", "python-modules": ["runway_client.airflow.sensors"]}
        ],
        "triggers": [
            {"integration-name": "Runway", "python-modules": ["runway_client.airflow.triggers"]}
        ],
        "connection-types": [
            {
                "hook-class-name": "runway_client.airflow.hooks.RunwayHook",
                "hook-name": "Runway",
                "connection-type": "runway",
                "conn-fields": {
                    name: {"label": _LABELS[name], "schema": {"type": ["string", "null"]}}
                    for name in EXTRA_FIELDS
                },
                "ui-field-behaviour": {
                    key.replace("_", "-"): value for key, value in ui_field_behaviour().items()
                },
            }
        ],
    }


def ui_field_behaviour() -> dict[str, Any]:
    """Which standard connection fields the form hides, and what it calls the others
    (the hook's ``get_ui_field_behaviour``)."""
    return {
        "hidden_fields": ["schema", "port"],
        "relabeling": {
            "host": "Runway base URL",
            "login": "Client ID",
            "password": "Client secret",
        },
        "placeholders": {
            "host": "https://api.<instance>.runwayloader.org/api/v1",
            "auth_base_url": "https://<tenant>.us.auth0.com",
            "partner_code": "ea",
        },
    }
