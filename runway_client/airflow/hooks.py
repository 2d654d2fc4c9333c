"""``RunwayHook``: a ``RunwayClient`` from an Airflow Connection of type ``runway``."""

from __future__ import annotations

import os
from typing import Any

from returns.result import Failure

from runway_client import FileTokenCache, RunwayClient, RunwayError, make_config
from runway_client.airflow._airflow import BaseHook
from runway_client.airflow.connection import EXTRA_FIELDS, client_settings
from runway_client.airflow.provider import ui_field_behaviour

__all__ = ["RunwayHook"]


class RunwayHook(BaseHook):
    """Builds a ``RunwayClient`` from the connection ``runway_conn_id``.

    The connection: host = the Runway base URL, login = client id, password =
    client secret, extras ``auth_base_url`` and ``partner_code`` (optionally
    ``token_url``, ``audience``), bare or as ``extra__runway__<name>``
    (``runway_client.airflow.connection``). Existing ``edu_edfi_airflow``
    connections work unchanged; so does its ``hook.get_runway_client()``.

    Args:
        runway_conn_id: the connection id (default ``runway_default``).
        shared_token_cache: take tokens from a ``FileTokenCache`` shared by every
            task process of this OS user on the machine (default ``True``), so
            mapped tasks do not each ask the identity provider for a token.
        token_cache_dir: its folder (default ``$XDG_CACHE_HOME/runway_client/tokens``).

    ``get_conn()`` raises ``RunwayError`` (``InputError``) when the connection's
    settings are incomplete or malformed, listing every problem.

    Example (in a task)::

        client = RunwayHook("runway_default").get_conn()
        client.load_files(tenant_code="ea", bundle_name="assessments/PSAT_SAT", ...)
    """

    conn_name_attr = "runway_conn_id"
    default_conn_name = "runway_default"
    conn_type = "runway"
    hook_name = "Runway"

    def __init__(
        self,
        runway_conn_id: str = default_conn_name,
        *,
        shared_token_cache: bool = True,
        token_cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.runway_conn_id = runway_conn_id
        self.shared_token_cache = shared_token_cache
        self.token_cache_dir = token_cache_dir
        self.runway_client: RunwayClient | None = None

    def client_settings(self) -> dict[str, Any]:
        """The ``RunwayClient`` keyword arguments the connection gives."""
        conn = self.get_connection(self.runway_conn_id)
        return client_settings(
            host=conn.host,
            login=conn.login,
            password=conn.password,
            extras=conn.extra_dejson,
            port=conn.port,
            schema=conn.schema,
        )

    def get_conn(self) -> RunwayClient:
        """The client (made once per hook)."""
        if self.runway_client is None:
            settings = self.client_settings()
            cache = None
            if self.shared_token_cache:
                config = make_config(**settings)
                if isinstance(config, Failure):
                    raise config.failure()
                cache = FileTokenCache(config.unwrap(), directory=self.token_cache_dir)
            self.runway_client = RunwayClient(**settings, token_cache=cache)
        return self.runway_client

    def get_runway_client(self) -> RunwayClient:
        """``get_conn()`` under the name ``edu_edfi_airflow``'s hook used."""
        return self.get_conn()

    def test_connection(self) -> tuple[bool, str]:
        """The UI's "Test" button: asks Runway which partners the credentials act for
        (with a token fetched now, not one from the shared cache)."""
        try:
            with RunwayClient(**self.client_settings()) as client:
                partners = client.verify_token()
        except RunwayError as error:
            return False, str(error)
        if not partners:
            return False, "The credentials work, but the token is valid for no partners."
        return True, f"Token is valid for partner(s): {', '.join(partners)}"

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow's Flask UI; Airflow 3's UI reads
        the same fields from the provider info)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField

        labels = {
            "auth_base_url": "Auth base URL",
            "partner_code": "Partner code",
            "token_url": "Token URL (instead of the auth base URL)",
            "audience": "Audience (optional)",
        }
        return {
            name: StringField(lazy_gettext(labels[name]), widget=BS3TextFieldWidget())
            for name in EXTRA_FIELDS
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden fields, labels and placeholders of the connection form."""
        return ui_field_behaviour()
