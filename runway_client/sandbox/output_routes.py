"""The output-set routes of the External API (CONTRACT.md "Output sets").

``GET /output-sets`` (scope ``read:jobs``), checks in order: the query's shape (400, a
list: ``schoolYear must be a 4-digit year``, ``sentToOds must be a boolean value``,
``createdAfter must be a valid ISO 8601 date string``); ``partner`` absent or empty (400
``partner query parameter is required``); partner not among the token's ``partner:``
scopes or not the instance's (404 ``Partner not found: <p>``); ``schoolYear`` outside
2000-2099 (400 ``Invalid school year: <y>``). Then 200: the partner's sets from
successful runs that pass the filters, ``createdAt`` ascending.

``POST /output-sets/<setUid>/download-links`` (scope ``read:jobs:output-files``): uid not a
UUID, 400 ``Validation failed (uuid is expected)``; unknown set or a partner outside the
token's scopes, 404 ``Output set not found: <uid>``; else 200
``{"downloadLinks": {name: presigned GET URL}}``, each URL living ``link_lifetime`` seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from werkzeug.wrappers import Request, Response

from runway_client.sandbox.output_sets import OutputSetStore, output_object_key, to_json
from runway_client.sandbox.presign import Presigner
from runway_client.sandbox.queries import parse_output_set_query
from runway_client.sandbox.replies import UUID_PATTERN, Caller, api_error, json_response


class OutputSetRoutes:
    """The two handlers, sharing the set store, the signer and the instance's partner."""

    def __init__(
        self,
        *,
        outputs: OutputSetStore,
        presigner: Presigner,
        partner_code: str,
        link_lifetime: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._outputs = outputs
        self._presigner = presigner
        self._partner_code = partner_code
        self._link_lifetime = link_lifetime
        self._now = now

    def list_sets(self, request: Request, caller: Caller, _: Mapping[str, str]) -> Response:
        """``GET /output-sets?partner=...``: 200 with the matching sets."""
        query = parse_output_set_query(request.args)
        if isinstance(query, list):
            return api_error(400, query)
        partner = query.partner
        if not partner:
            return api_error(400, "partner query parameter is required")
        if partner not in caller.partners or partner != self._partner_code:
            return api_error(404, f"Partner not found: {partner}")
        if query.school_year is not None and not 2000 <= int(query.school_year) <= 2099:
            return api_error(400, f"Invalid school year: {query.school_year}")
        sets = [to_json(s) for s in self._outputs.all() if query.matches(s)]
        return json_response(200, sets)

    def download_links(
        self, request: Request, caller: Caller, arguments: Mapping[str, str]
    ) -> Response:
        """``POST /output-sets/<uid>/download-links``: 200 with a presigned GET per file."""
        uid = arguments["uid"]
        if not UUID_PATTERN.fullmatch(uid):
            return api_error(400, "Validation failed (uuid is expected)")
        output_set = self._outputs.get(uid.lower())
        if output_set is None or output_set.partner not in caller.partners:
            return api_error(404, f"Output set not found: {uid}")
        signed_at = self._now()
        deadline = signed_at + timedelta(seconds=self._link_lifetime)
        links: dict[str, str] = {}
        for name in output_set.files:
            url = self._presigner.url(
                output_object_key(output_set.uid, name),
                signed_at,
                self._link_lifetime,
                method="GET",
            )
            signature = self._presigner.signature_of(url)
            assert signature is not None
            self._outputs.remember_link(signature, deadline)
            links[name] = url
        return json_response(200, {"downloadLinks": links})
