"""Batch manifests and settings files (pure: YAML text -> checked values)."""

from __future__ import annotations

from pathlib import Path

from returns.result import Failure, Success

from runway_client._manifest import parse_manifest, parse_settings

EXAMPLE = """
defaults:            # optional; any load field
  tenant_code: ea
  school_year: "2526"
loads:
  - bundle_name: assessments/PSAT_SAT
    input_files: {INPUT_FILE: data/sat.csv}     # relative paths are relative to the manifest
    bundle_params: {TEST_TYPE: SAT}
  - tenant_code: other
    bundle_name: assessments/STAR
    input_files: {INPUT_FILE: data/star.csv}
"""


def test_the_issue_example_merges_defaults_and_resolves_paths_beside_the_manifest() -> None:
    manifest = parse_manifest(EXAMPLE, base_dir="/srv/batch", environ={}).unwrap()
    first, second = manifest.loads
    assert (first.tenant_code, first.school_year, first.bundle_params) == (
        "ea",
        "2526",
        {"TEST_TYPE": "SAT"},
    )
    assert first.input_files == {"INPUT_FILE": str(Path("/srv/batch/data/sat.csv"))}
    assert (second.tenant_code, second.bundle_name, second.school_year) == (
        "other",
        "assessments/STAR",
        "2526",
    )
    assert manifest.problems == ()


def test_params_and_files_merge_key_by_key_and_absolute_paths_stay() -> None:
    text = """
defaults:
  tenant_code: ea
  school_year: 2026
  bundle_params: {TEST_TYPE: SAT, OTHER: x}
loads:
  - bundle_name: b
    input_files: {INPUT_FILE: /abs/sat.csv}
    bundle_params: {TEST_TYPE: PSAT 10}
"""
    (load,) = parse_manifest(text, base_dir="/m", environ={}).unwrap().loads
    assert load.bundle_params == {"TEST_TYPE": "PSAT 10", "OTHER": "x"}
    assert load.input_files == {"INPUT_FILE": "/abs/sat.csv"}
    assert load.school_year == 2026


def test_environment_variables_are_interpolated_after_parsing() -> None:
    text = """
loads:
  - tenant_code: ${TENANT}
    bundle_name: assessments/PSAT_SAT
    school_year: "2526"
    input_files: {INPUT_FILE: "${DATA}/sat.csv"}
    bundle_params: {TEST_TYPE: "$${LITERAL}"}
"""
    # A value holding YAML syntax stays a plain string: it cannot change the document.
    env = {"TENANT": "ea", "DATA": "/d: [x]"}
    (load,) = parse_manifest(text, base_dir="/m", environ=env).unwrap().loads
    assert load.tenant_code == "ea"
    assert load.input_files == {"INPUT_FILE": "/d: [x]/sat.csv"}
    assert load.bundle_params == {"TEST_TYPE": "${LITERAL}"}


def test_every_entry_problem_is_named_with_its_index_and_field() -> None:
    text = """
defaults: {tenant_code: ea, school_year: "2526"}
loads:
  - bundle_name: assessments/PSAT_SAT
    input_files: {INPUT_FILE: a.csv}
    tenant: typo
  - input_files: {INPUT_FILE: "${NOT_SET}/b.csv"}
  - bundle_name: [not, a, string]
    input_files: {INPUT_FILE: c.csv}
"""
    manifest = parse_manifest(text, base_dir="/m", environ={}).unwrap()
    assert manifest.problems == (
        "loads[0]: unknown field 'tenant'; a load takes tenant_code, bundle_name, "
        "school_year, input_files, bundle_params",
        "loads[1].input_files.INPUT_FILE: the environment variable NOT_SET is not set",
        "loads[1].bundle_name is missing (give it here or in defaults)",
        "loads[2].bundle_name must be a string, got list ['not', 'a', 'string']",
    )
    assert manifest.loads[1].bad_fields == ("bundle_name", "input_files")


def test_yaml_syntax_errors_say_where() -> None:
    outcome = parse_manifest("loads:\n  - {bundle_name: x\n", base_dir="/", environ={})
    assert isinstance(outcome, Failure)
    (problem,) = outcome.failure().problems
    assert problem.startswith("manifest: YAML syntax error at line 3, column 1")


def test_a_document_without_loads_is_refused_as_a_whole() -> None:
    for text, expected in (
        ("[1, 2]", "manifest: expected a mapping with a 'loads:' list"),
        ("defaults: {}\n", "manifest: 'loads:' must be a non-empty list of loads"),
        ("loads: []\nextra: 1\n", "manifest: unknown top-level field 'extra'"),
    ):
        outcome = parse_manifest(text, base_dir="/", environ={})
        assert isinstance(outcome, Failure)
        assert outcome.failure().problems[0].startswith(expected)


def test_settings_files_take_flag_names_and_interpolate_the_secret() -> None:
    text = """
base_url: https://api.x.org/api/v1
auth-base-url: https://a.auth0.com
client_id: abc
client_secret: ${RUNWAY_CLIENT_SECRET}
partner: ea
read_timeout: 30
retries: 2
concurrency: 8
"""
    settings = parse_settings(text, environ={"RUNWAY_CLIENT_SECRET": "s3cret"})
    assert settings == Success(
        {
            "base_url": "https://api.x.org/api/v1",
            "auth_base_url": "https://a.auth0.com",
            "client_id": "abc",
            "client_secret": "s3cret",
            "partner": "ea",
            "read_timeout": 30,
            "retries": 2,
            "concurrency": 8,
        }
    )


def test_settings_files_refuse_unknown_keys_and_wrong_types() -> None:
    outcome = parse_settings("clientid: x\nread_timeout: soon\n", environ={})
    assert isinstance(outcome, Failure)
    problems = outcome.failure().problems
    assert problems[0].startswith("settings file: unknown setting 'clientid'")
    assert problems[1] == "settings file: read_timeout must be a number, got 'soon'"
