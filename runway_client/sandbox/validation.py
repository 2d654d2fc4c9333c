"""Pure checks of a ``POST /jobs`` body: its shape (rule 1) and the bundle metadata (rule 8).

Rules and messages are CONTRACT.md's "Validation order on POST /jobs"; the checks that
need the token or the sandbox's configuration (rules 2-7) live in ``api.py``.

>>> parse_job_body({"partner": "ea", "tenant": "ea", "bundle": "b", "schoolYear": "2526",
...                 "files": {"INPUT_FILE": " "}})
['File names must not be empty']
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from runway_client.sandbox.catalog import SERVER_PARAMS, Bundle

SCHOOL_YEAR_FORMAT = (
    'School year must be a 4-digit end year, e.g. "2026" for the 2025-2026 school year'
)
EMPTY_FILE_NAME = "File names must not be empty"
_FOUR_DIGITS = re.compile(r"[0-9]{4}")


@dataclass(frozen=True, slots=True)
class JobBody:
    """A well-shaped ``POST /jobs`` body; file names trimmed, ``params`` ``{}`` when absent."""

    partner: str
    tenant: str
    bundle: str
    school_year: str
    files: dict[str, str]
    params: dict[str, str]


def _required_string(body: Mapping[str, object], name: str, errors: list[str]) -> str:
    value = body.get(name)
    if isinstance(value, str) and value:
        return value
    errors.append(f"{name} must be a non-empty string")
    return ""


def _files(value: object, errors: list[str]) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        errors.append("files must be a non-empty object mapping file keys to file names")
        return {}
    files: dict[str, str] = {}
    for key, name in value.items():
        trimmed = name.strip() if isinstance(name, str) else ""
        if not trimmed:
            errors.append(EMPTY_FILE_NAME)
            return {}
        files[str(key)] = trimmed
    return files


def _params(value: object, errors: list[str]) -> dict[str, str]:
    if value is None:  # optional; class-validator's @IsOptional also lets null through
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        errors.append("params must be an object of string values")
        return {}
    return {str(key): str(item) for key, item in value.items()}


def parse_job_body(body: object) -> JobBody | list[str]:
    """The body as a ``JobBody``, or every failing field's message (rule 1, a 400 list).

    >>> parse_job_body({"partner": "ea", "tenant": "", "bundle": "b", "schoolYear": 2026,
    ...                 "files": {"INPUT_FILE": "a.csv"}})  # doctest: +NORMALIZE_WHITESPACE
    ['tenant must be a non-empty string',
     'School year must be a 4-digit end year, e.g. "2026" for the 2025-2026 school year']
    """
    if not isinstance(body, dict):
        return ["The request body must be a JSON object"]
    errors: list[str] = []
    partner = _required_string(body, "partner", errors)
    tenant = _required_string(body, "tenant", errors)
    bundle = _required_string(body, "bundle", errors)
    school_year = body.get("schoolYear")
    if not (isinstance(school_year, str) and _FOUR_DIGITS.fullmatch(school_year)):
        errors.append(SCHOOL_YEAR_FORMAT)
        school_year = ""
    files = _files(body.get("files"), errors)
    params = _params(body.get("params"), errors)
    if errors:
        return errors
    return JobBody(
        partner=partner,
        tenant=tenant,
        bundle=bundle,
        school_year=str(school_year),
        files=files,
        params=params,
    )


def _joined(names: list[str]) -> str:
    return ", ".join(names)


def check_bundle_inputs(
    bundle: Bundle, files: Mapping[str, str], params: Mapping[str, str]
) -> str | None:
    """The first failing metadata rule's message (rule 8, a 400), or ``None``.

    Order: missing params, invalid param values, unexpected params, unexpected files,
    missing files; ``API_YEAR`` is ignored throughout. Names keep registry order for
    "missing" and request order for "invalid"/"unexpected".

    >>> from runway_client.sandbox.catalog import builtin_catalog
    >>> psat = builtin_catalog()["assessments/PSAT_SAT"]
    >>> check_bundle_inputs(psat, {"INPUT_FILE": "a.csv"}, {"TEST_TYPE": "ACT"})
    'Invalid param values: TEST_TYPE'
    """
    declared = {p.env_var: p for p in bundle.params if p.env_var not in SERVER_PARAMS}
    sent = {k: v for k, v in params.items() if k not in SERVER_PARAMS}
    missing = [p for p, spec in declared.items() if spec.is_required and p not in sent]
    if missing:
        return f"Missing required params: {_joined(missing)}"
    invalid = [
        name
        for name, value in sent.items()
        if name in declared
        and (allowed := declared[name].allowed_values) is not None
        and value not in allowed
    ]
    if invalid:
        return f"Invalid param values: {_joined(invalid)}"
    unexpected = [name for name in sent if name not in declared]
    if unexpected:
        return f"Unexpected params: {_joined(unexpected)}"
    known_files = {f.env_var for f in bundle.files}
    unexpected_files = [key for key in files if key not in known_files]
    if unexpected_files:
        return f"Unexpected files: {_joined(unexpected_files)}"
    missing_files = [f.env_var for f in bundle.files if f.is_required and f.env_var not in files]
    if missing_files:
        return f"Missing required files: {_joined(missing_files)}"
    return None
