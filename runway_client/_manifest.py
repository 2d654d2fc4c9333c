"""Batch manifests and settings files: YAML text -> checked values (pure: no I/O).

A manifest lists loads; ``defaults:`` is merged into each of ``loads:``::

    defaults:            # optional; any load field
      tenant_code: ea
      school_year: "2526"
    loads:
      - bundle_name: assessments/PSAT_SAT
        input_files: {INPUT_FILE: data/sat.csv}     # relative to the manifest's folder
        bundle_params: {TEST_TYPE: SAT}

Rules, the Ed-Fi tools' (earthmover, lightbeam) where they have one:

- ``${NAME}`` in any string value is replaced by the environment variable
  ``NAME`` (after the YAML is parsed, so a value can never change the document's
  shape); ``$${`` writes a literal ``${``; an unset variable is a problem;
- relative ``input_files`` paths are relative to the manifest's folder;
- ``defaults`` is merged into each load: a load's own fields win, and
  ``bundle_params``/``input_files`` are merged key by key;
- unknown fields are refused (a typo must not silently drop a param);
- every problem is reported at once, each named ``loads[i].field``.

What needs the disk (do the files exist? their sizes and SHA-256) is checked by
the ``load_many`` flow (``runway_client._batch``), which reports with the same names.

PyYAML is an optional extra (``pip install 'runway-client[batch]'``), imported
only when a manifest or settings file is read.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from functools import partial
from pathlib import PurePath
from typing import Final

import msgspec
from returns.result import Failure, Result, Success

from runway_client._errors import InputError, RunwayError

__all__ = [
    "LOAD_FIELDS",
    "SETTINGS_FIELDS",
    "LoadEntry",
    "Manifest",
    "interpolate",
    "manifest_from",
    "parse_manifest",
    "parse_settings",
    "read_yaml",
]

LOAD_FIELDS: Final = ("tenant_code", "bundle_name", "school_year", "input_files", "bundle_params")
"""The fields of a load (the original client's vocabulary); ``defaults`` takes the same."""
_REQUIRED: Final = ("tenant_code", "bundle_name", "school_year", "input_files")

SETTINGS_FIELDS: Final = (
    "base_url",
    "auth_base_url",
    "token_url",
    "client_id",
    "client_secret",
    "partner",
    "audience",
    "connect_timeout",
    "read_timeout",
    "retries",
    "concurrency",
    "ca_bundle",
    "call_timeout",
    "upload_concurrency",
)
"""The keys of a settings file (``runway-client -c runway.yml``): the command line's flag names."""

_VARIABLE: Final = re.compile(r"\$(\$?)\{([^}]*)\}")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class LoadEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One load of a manifest, merged with ``defaults`` and interpolated; not yet checked
    against the disk or the school-year rules (``prepare_job`` does that).

    Attributes:
        index: its position in ``loads:`` (0-based), as problems name it: ``loads[3]``.
        tenant_code, bundle_name: as written.
        school_year: as written (a string or an int), e.g. ``"2526"``.
        input_files: file key -> path, relative paths joined to the manifest's folder.
        bundle_params: param -> value.
        problems: what is wrong with how the entry is written (unknown fields, wrong
            types, unset variables), each naming ``loads[i].field``; ``bad_fields``:
            the fields concerned (the rest can still be checked, so that every
            problem is reported at once).
    """

    index: int
    tenant_code: str
    bundle_name: str
    school_year: str | int
    input_files: dict[str, str]
    bundle_params: dict[str, str] = msgspec.field(default_factory=dict)
    problems: tuple[str, ...] = ()
    bad_fields: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``loads[i]``: how problems and the summary name this entry."""
        return f"loads[{self.index}]"


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """The loads of a manifest, in order (some may carry ``problems``)."""

    loads: tuple[LoadEntry, ...]

    @property
    def problems(self) -> tuple[str, ...]:
        """Every entry's problems, in order."""
        return tuple(p for load in self.loads for p in load.problems)


def read_yaml(text: str, *, what: str) -> Result[object, RunwayError]:
    """Parse YAML ``text`` (safe loader: plain data only); ``what`` names it in problems.

    A syntax error says where (line and column, 1-based).

    >>> print(read_yaml("a: [1, 2", what="manifest").failure().problems[0])
    manifest: YAML syntax error at line 1, column 9: expected ',' or ']', but got '<stream end>'
    """
    try:
        import yaml
    except ImportError:  # pragma: no cover - depends on the install
        return Failure(
            InputError.of(
                [
                    f"reading a {what} needs PyYAML: pip install 'runway-client[batch]' "
                    "(or pip install pyyaml)"
                ]
            )
        )
    try:
        return Success(yaml.safe_load(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return Failure(
            InputError.of([f"{what}: YAML syntax error{where}: {exc.problem or exc.context}"])
        )
    except yaml.YAMLError as exc:
        return Failure(InputError.of([f"{what}: YAML syntax error: {exc}"]))


def interpolate(
    value: object, environ: Mapping[str, str], where: str, problems: list[str]
) -> object:
    """``value`` with ``${NAME}`` replaced in every string inside it (keys included).

    Unset or badly written variables are added to ``problems`` (named by
    ``where``); ``$${`` is a literal ``${``.

    >>> interpolate({"p": "${D}/sat.csv", "q": "$${D}"}, {"D": "/data"}, "loads[0]", [])
    {'p': '/data/sat.csv', 'q': '${D}'}
    """
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            escaped, name = match.group(1), match.group(2)
            if escaped:
                return "${" + name + "}"
            if not _NAME.fullmatch(name):
                problems.append(f"{where}: ${{{name}}} is not a variable name")
                return match.group(0)
            if name not in environ:
                problems.append(f"{where}: the environment variable {name} is not set")
                return match.group(0)
            return environ[name]

        return _VARIABLE.sub(replace, value)
    if isinstance(value, dict):
        return {
            interpolate(k, environ, where, problems): interpolate(
                v, environ, f"{where}.{k}", problems
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate(v, environ, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    return value


def parse_manifest(
    text: str, *, base_dir: str, environ: Mapping[str, str]
) -> Result[Manifest, RunwayError]:
    """Read a manifest's YAML ``text``: ``Success(Manifest)``, whose entries carry their own
    ``problems`` (each naming ``loads[i].field``), or one ``InputError`` when the document
    as a whole is unusable (YAML syntax, no ``loads:``, bad ``defaults:``).

    ``base_dir`` is the manifest's folder (relative ``input_files`` are joined to
    it); ``environ`` supplies ``${NAME}`` values.

    >>> m = parse_manifest('''
    ... defaults: {tenant_code: ea, school_year: "2526"}
    ... loads:
    ...   - bundle_name: assessments/PSAT_SAT
    ...     input_files: {INPUT_FILE: data/sat.csv}
    ...     bundle_params: {TEST_TYPE: SAT}
    ... ''', base_dir="/srv/batch", environ={}).unwrap()
    >>> m.loads[0].input_files, m.loads[0].tenant_code
    ({'INPUT_FILE': '/srv/batch/data/sat.csv'}, 'ea')
    >>> parse_manifest("loads: [{tenant: ea}]", base_dir="/", environ={}).unwrap().problems[0]
    "loads[0]: unknown field 'tenant'; a load takes tenant_code, bundle_name, school_year, input_files, bundle_params"
    """
    return read_yaml(text, what="manifest").bind(
        partial(manifest_from, base_dir=base_dir, environ=environ)
    )


def manifest_from(
    document: object, *, base_dir: str, environ: Mapping[str, str]
) -> Result[Manifest, RunwayError]:
    """``parse_manifest`` for a manifest already read: a mapping with ``loads`` (and
    ``defaults``), as from YAML or written in Python.

    >>> manifest_from({"loads": [{"tenant_code": "ea", "bundle_name": "assessments/STAR",
    ...     "school_year": 2026, "input_files": {"INPUT_FILE": "/d/star.csv"}}]},
    ...     base_dir="/", environ={}).unwrap().loads[0].label
    'loads[0]'
    """
    problems: list[str] = []
    if not isinstance(document, dict):
        return Failure(
            InputError.of(
                [
                    "manifest: expected a mapping with a 'loads:' list (and optional "
                    f"'defaults:'), got {_kind(document)}"
                ]
            )
        )
    for key in document:
        if key not in ("defaults", "loads"):
            problems.append(f"manifest: unknown top-level field {key!r}; expected defaults, loads")
    defaults = _fields(document.get("defaults") or {}, "defaults", environ, problems)
    raw_loads = document.get("loads")
    if not isinstance(raw_loads, list) or not raw_loads:
        problems.append("manifest: 'loads:' must be a non-empty list of loads")
        raw_loads = []
    if problems:  # the document itself (or its defaults) is unusable
        return Failure(InputError.of(problems))
    entries: list[LoadEntry] = []
    for index, raw in enumerate(raw_loads):
        where = f"loads[{index}]"
        found: list[str] = []
        own = _fields(raw, where, environ, found)
        merged = {**defaults, **own}
        for both in ("input_files", "bundle_params"):
            under, over = defaults.get(both), own.get(both)
            if isinstance(under, dict) and isinstance(over, dict):
                merged[both] = {**under, **over}
        entries.append(_entry(index, merged, base_dir, found))
    return Success(Manifest(loads=tuple(entries)))


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _fields(
    raw: object, where: str, environ: Mapping[str, str], problems: list[str]
) -> dict[str, object]:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping of load fields, got {_kind(raw)}")
        return {}
    fields: dict[str, object] = {}
    for key, value in raw.items():
        if key not in LOAD_FIELDS:
            problems.append(
                f"{where}: unknown field {key!r}; a load takes {', '.join(LOAD_FIELDS)}"
            )
            continue
        fields[key] = interpolate(value, environ, f"{where}.{key}", problems)
    return fields


def _entry(
    index: int, fields: Mapping[str, object], base_dir: str, problems: list[str]
) -> LoadEntry:
    where = f"loads[{index}]"
    bad: set[str] = {f for f in LOAD_FIELDS if any(p.startswith(f"{where}.{f}") for p in problems)}

    def flag(name: str, problem: str) -> None:
        problems.append(problem)
        bad.add(name)

    for name in _REQUIRED:
        if fields.get(name) in (None, "", {}):
            flag(name, f"{where}.{name} is missing (give it here or in defaults)")
    text: dict[str, str] = {}
    for name in ("tenant_code", "bundle_name"):
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            flag(name, f"{where}.{name} must be a string, got {_kind(value)} {value!r}")
        text[name] = value if isinstance(value, str) else ""
    year = fields.get("school_year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, str | int)):
        flag("school_year", f'{where}.school_year must be a string such as "2526", got {year!r}')
    files = _string_map(fields.get("input_files"), f"{where}.input_files", problems)
    params = _string_map(fields.get("bundle_params"), f"{where}.bundle_params", problems)
    bad.update(
        f
        for f in ("input_files", "bundle_params")
        if any(p.startswith(f"{where}.{f}") for p in problems)
    )
    return LoadEntry(
        index=index,
        tenant_code=text["tenant_code"],
        bundle_name=text["bundle_name"],
        school_year=year if isinstance(year, str | int) and not isinstance(year, bool) else "",
        input_files={key: _beside(base_dir, path) for key, path in files.items()},
        bundle_params=params,
        problems=tuple(problems),
        bad_fields=tuple(sorted(bad)),
    )


def _string_map(value: object, where: str, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where} must be a mapping of KEY: value, got {_kind(value)}")
        return {}
    found: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            problems.append(f"{where}: key {key!r} must be a string")
        elif isinstance(item, bool) or not isinstance(item, str | int | float):
            problems.append(f"{where}.{key} must be a string, got {_kind(item)}")
        else:
            found[key] = str(item)
    return found


def _beside(base_dir: str, path: str) -> str:
    """``path`` joined to ``base_dir`` unless absolute (either flavour of absolute)."""
    if PurePath(path).is_absolute() or posixpath.isabs(path):
        return path
    return str(PurePath(base_dir) / path)


def parse_settings(
    text: str, *, environ: Mapping[str, str], what: str = "settings file"
) -> Result[dict[str, str | float | int], RunwayError]:
    """Read a settings file (``runway-client -c runway.yml``): flag name -> value.

    Keys are ``SETTINGS_FIELDS`` (the command line's flag names, ``-`` or ``_``
    alike); ``${NAME}`` is replaced from ``environ``, which is how the client
    secret should get there. Numbers are checked to be numbers here; the rest is
    checked with every other setting by ``make_config``.

    >>> parse_settings("partner: ea\\nclient_secret: ${S}\\nread-timeout: 30", environ={"S": "x"}).unwrap()
    {'partner': 'ea', 'client_secret': 'x', 'read_timeout': 30}
    """
    parsed = read_yaml(text, what=what)
    if not isinstance(parsed, Success):
        return Failure(parsed.failure())
    document = parsed.unwrap()
    if document is None:
        return Success({})
    if not isinstance(document, dict):
        return Failure(
            InputError.of([f"{what}: expected a mapping of settings, got {_kind(document)}"])
        )
    problems: list[str] = []
    settings: dict[str, str | float | int] = {}
    for raw_key, raw_value in document.items():
        key = str(raw_key).replace("-", "_")
        if key not in SETTINGS_FIELDS:
            problems.append(
                f"{what}: unknown setting {raw_key!r}; known: {', '.join(SETTINGS_FIELDS)}"
            )
            continue
        value = interpolate(raw_value, environ, f"{what}: {key}", problems)
        if key in (
            "connect_timeout",
            "read_timeout",
            "retries",
            "concurrency",
            "call_timeout",
            "upload_concurrency",
        ):
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{what}: {key} must be a number, got {value!r}")
                continue
        elif not isinstance(value, str):
            problems.append(f"{what}: {key} must be a string, got {_kind(value)}")
            continue
        settings[key] = value
    if problems:
        return Failure(InputError.of(problems))
    return Success(settings)
