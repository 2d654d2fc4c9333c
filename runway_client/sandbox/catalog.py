"""Bundle metadata: which files and params each assessment bundle takes.

The shape is the public bundle registry's (``registry.json``, see CONTRACT.md
"Bundles"): ``{"assessments": [{"path", "input_files": [{"env_var", "is_required"}],
"input_params": [{"env_var", "is_required", "allowed_values"?}]}]}``;
``input_params`` may be absent.

>>> catalog = builtin_catalog()
>>> [f.env_var for f in catalog["assessments/STAR"].files]
['INPUT_FILE', 'INPUT_FILE_DS', 'INPUT_FILE_SA']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: Params the Runway server fills in itself; never required of, nor checked on, a request
#: (CONTRACT.md "POST /jobs body" and "Validation order", rule 8).
SERVER_PARAMS: Final = frozenset({"API_YEAR"})


@dataclass(frozen=True, slots=True)
class InputFile:
    """One file a bundle takes, keyed by its ``env_var`` (the file key on the wire)."""

    env_var: str
    is_required: bool


@dataclass(frozen=True, slots=True)
class InputParam:
    """One param a bundle takes; ``allowed_values`` is ``None`` when any string goes."""

    env_var: str
    is_required: bool
    allowed_values: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Bundle:
    """A bundle's path (e.g. ``assessments/PSAT_SAT``) and its inputs, in registry order."""

    path: str
    files: tuple[InputFile, ...]
    params: tuple[InputParam, ...]


# Copied verbatim from registry.json (earthmover_edfi_bundles at f8967a1f, Apache-2.0).
BUILTIN_REGISTRY: Final[Mapping[str, object]] = {
    "assessments": [
        {
            "path": "assessments/PSAT_SAT",
            "input_files": [
                {
                    "display_name": "Assessment data",
                    "env_var": "INPUT_FILE",
                    "is_required": True,
                    "file_type": ["csv"],
                }
            ],
            "input_params": [
                {"display_name": "School Year", "env_var": "API_YEAR", "is_required": True},
                {
                    "display_name": "Test Type",
                    "env_var": "TEST_TYPE",
                    "is_required": True,
                    "allowed_values": ["PSAT 8/9", "PSAT 10", "PSAT/NMSQT", "SAT"],
                },
            ],
        },
        {
            "path": "assessments/MAP_Growth",
            "input_files": [
                {
                    "display_name": "Assessment data",
                    "env_var": "INPUT_FILE",
                    "is_required": True,
                    "file_type": ["csv"],
                }
            ],
        },
        {
            "path": "assessments/ACCESS",
            "input_files": [
                {
                    "display_name": "Assessment data",
                    "env_var": "INPUT_FILE",
                    "is_required": True,
                    "file_type": ["csv"],
                }
            ],
            "input_params": [
                {"display_name": "School Year", "env_var": "API_YEAR", "is_required": True},
                {
                    "display_name": "Format",
                    "env_var": "FORMAT",
                    "is_required": True,
                    "allowed_values": ["Standard", "Alternate"],
                },
            ],
        },
        {
            "path": "assessments/STAR",
            "input_files": [
                {
                    "display_name": "Overall assessment data",
                    "env_var": "INPUT_FILE",
                    "is_required": True,
                    "file_type": ["csv"],
                },
                {
                    "display_name": "Dashboard standards",
                    "env_var": "INPUT_FILE_DS",
                    "is_required": False,
                    "file_type": ["csv"],
                },
                {
                    "display_name": "Skill area",
                    "env_var": "INPUT_FILE_SA",
                    "is_required": False,
                    "file_type": ["csv"],
                },
            ],
            "input_params": [
                {"display_name": "School Year", "env_var": "API_YEAR", "is_required": True}
            ],
        },
    ]
}


def _field(entry: Mapping[str, object], name: str, kind: type, where: str) -> object:
    value = entry.get(name)
    if not isinstance(value, kind):
        raise ValueError(f"registry: {where}.{name} must be a {kind.__name__}")
    return value


def _parse_file(entry: object, where: str) -> InputFile:
    if not isinstance(entry, Mapping):
        raise ValueError(f"registry: {where} must be an object")
    env_var = _field(entry, "env_var", str, where)
    is_required = _field(entry, "is_required", bool, where)
    return InputFile(env_var=str(env_var), is_required=bool(is_required))


def _parse_param(entry: object, where: str) -> InputParam:
    if not isinstance(entry, Mapping):
        raise ValueError(f"registry: {where} must be an object")
    env_var = _field(entry, "env_var", str, where)
    is_required = _field(entry, "is_required", bool, where)
    allowed = entry.get("allowed_values")
    if allowed is not None and not (
        isinstance(allowed, list) and all(isinstance(v, str) for v in allowed)
    ):
        raise ValueError(f"registry: {where}.allowed_values must be a list of strings")
    return InputParam(
        env_var=str(env_var),
        is_required=bool(is_required),
        allowed_values=None if allowed is None else tuple(allowed),
    )


def _entries(entry: Mapping[str, object], name: str, where: str) -> list[object]:
    value = entry.get(name, [])
    if not isinstance(value, list):
        raise ValueError(f"registry: {where}.{name} must be a list")
    return value


def parse_registry(document: object) -> dict[str, Bundle]:
    """Bundles by path from a parsed registry document; ``ValueError`` names a bad field.

    >>> parse_registry({"assessments": [{"path": "a/B", "input_files": []}]})["a/B"].params
    ()
    """
    if not isinstance(document, Mapping):
        raise ValueError("registry: the document must be an object")
    bundles: dict[str, Bundle] = {}
    for index, entry in enumerate(_entries(document, "assessments", "$")):
        where = f"assessments[{index}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"registry: {where} must be an object")
        path = str(_field(entry, "path", str, where))
        files = tuple(
            _parse_file(item, f"{where}.input_files[{i}]")
            for i, item in enumerate(_entries(entry, "input_files", where))
        )
        params = tuple(
            _parse_param(item, f"{where}.input_params[{i}]")
            for i, item in enumerate(_entries(entry, "input_params", where))
        )
        bundles[path] = Bundle(path=path, files=files, params=params)
    return bundles


def load_registry(path: str | Path) -> dict[str, Bundle]:
    """Bundles by path from a ``registry.json`` file (UTF-8)."""
    with Path(path).open(encoding="utf-8") as stream:
        return parse_registry(json.load(stream))


def builtin_catalog() -> dict[str, Bundle]:
    """The four bundles shipped with the sandbox: PSAT_SAT, MAP_Growth, ACCESS and STAR."""
    return parse_registry(BUILTIN_REGISTRY)
