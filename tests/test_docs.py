"""The docs tell the truth: README and usage examples run, and the error table matches."""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
import textwrap
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import hypothesis
import pytest
from returns.result import Failure, Result

from runway_client import RunwayClient, RunwayError, prepare_job
from runway_client._errors import NetworkError, Step
from runway_client._retry import RetryPolicy
from runway_client._steps import create_job, start, upload
from runway_client._transport import HttpResponse
from runway_client.sandbox import Sandbox
from runway_client.testing.transports import ScriptedTransport
from tests.conftest import REPO, use_sandbox_env

# --------------------------------------------------------------- every snippet runs
#
# Every ```python block of README.md and docs/**/*.md is a whole program, run verbatim
# (one fresh namespace per block, `__name__ == "__main__"`) with the working directory
# at the repository root and RUNWAY_* pointing at a sandbox the test starts. Tracebacks
# name the page and its line. A block that truly cannot run here is opted out by an
# HTML comment on the line just before its fence, giving the reason:
#
#     <!-- not-run: needs Apache Airflow -->
#     ```python
#
# Opted-out blocks show as skips (with their reasons) in every test run; keep them few.
# Shell, text and YAML blocks take another language tag (bash, text, yaml).

NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
PYTHON_TAGS = frozenset({"python", "py", "python3"})
MOST_OPTED_OUT = 5


class Snippet(NamedTuple):
    """One ```python block: where it is, its code, and why it is not run (if it is not)."""

    page: str  # relative to the repository root, e.g. "docs/usage.md"
    line: int  # 1-based line of the first code line
    code: str
    not_run: str | None


def doc_pages() -> list[Path]:
    """README.md and every Markdown page under docs/ (pages other helpers add included)."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def snippets(path: Path) -> list[Snippet]:
    """The ```python blocks of one page, with the line each starts on."""
    found: list[Snippet] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    page = path.relative_to(REPO).as_posix()
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if opened is None:
            i += 1
            continue
        indent, fence = opened["indent"], opened["fence"]
        tag = opened["info"].split(maxsplit=1)[0].strip("{}.").lower() if opened["info"] else ""
        end = i + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence) and not lines[end].strip().strip(fence[0])
        ):
            end += 1
        if tag in PYTHON_TAGS:
            previous = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
            marker = NOT_RUN.match(previous)
            body = [ln.removeprefix(indent) for ln in lines[i + 1 : end]]
            found.append(
                Snippet(page, i + 2, "\n".join(body) + "\n", marker["reason"] if marker else None)
            )
        i = end + 1
    return found


ALL_SNIPPETS = [s for page in doc_pages() for s in snippets(page)]


def repo_entries() -> set[str]:
    return {p.relative_to(REPO).as_posix() for d in (REPO, REPO / "examples") for p in d.iterdir()}


@pytest.mark.parametrize("snippet", ALL_SNIPPETS, ids=[f"{s.page}:{s.line}" for s in ALL_SNIPPETS])
def test_every_python_snippet_in_the_docs_runs(
    snippet: Snippet,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if snippet.not_run is not None:
        pytest.skip(f"{snippet.page}:{snippet.line} not run: {snippet.not_run}")
    use_sandbox_env(sandbox, monkeypatch)
    monkeypatch.chdir(REPO)
    before = repo_entries()
    # leading newlines: the compiled code's line numbers are the page's own
    code = compile("\n" * (snippet.line - 1) + snippet.code, str(REPO / snippet.page), "exec")
    failed: str | None = None
    # Hypothesis's "ci" profile, as CI gets from CI=true: derandomized, no deadline and no
    # example database, so a loaded machine cannot fail a documented property test.
    profile = hypothesis.settings.get_current_profile_name()
    hypothesis.settings.load_profile("ci")
    try:
        exec(code, {"__name__": "__main__"})  # noqa: S102 - our own documentation
    except BaseException as error:
        frames = [
            f for f in traceback.extract_tb(error.__traceback__) if f.filename == code.co_filename
        ]
        where = f"{snippet.page}:{frames[-1].lineno if frames else snippet.line}"
        failed = f"fails at {where}: {type(error).__name__}: {error}"
        shown = "".join(traceback.format_exception(error)[-40:])
    finally:
        hypothesis.settings.load_profile(profile)
    if failed is not None:
        pytest.fail(
            f"the snippet at {snippet.page}:{snippet.line} {failed}\n\n{shown}", pytrace=False
        )
    unstarted = [job.uid for job in sandbox.jobs() if not job.started]
    assert not unstarted, (
        f"the snippet at {snippet.page}:{snippet.line} left jobs unstarted: {unstarted}"
    )
    assert repo_entries() == before, (
        f"the snippet at {snippet.page}:{snippet.line} left files in the repository: "
        f"{sorted(repo_entries() - before)} (write to a temporary folder)"
    )


def test_the_readme_custom_flow_starts_its_job(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (flow,) = [
        s for s in snippets(REPO / "README.md") if "bind(partial(upload, transport))" in s.code
    ]
    test_every_python_snippet_in_the_docs_runs(flow, sandbox, monkeypatch)
    (job,) = sandbox.jobs()
    assert job.started
    assert f"started job {job.uid}" in capsys.readouterr().out


def test_the_snippet_runner_finds_blocks_lines_and_opt_outs(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\nx = 1\n```\n\n```bash\nls\n```\n\n"
        "<!-- not-run: needs Apache Airflow -->\n```python\nimport airflow\n```\n"
        "1. a list\n\n    ```py\n    y = 2\n    ```\n",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys.modules[__name__], "REPO", tmp_path)
        found = snippets(page)
    assert found == [
        Snippet("page.md", 4, "x = 1\n", None),
        Snippet("page.md", 13, "import airflow\n", "needs Apache Airflow"),
        Snippet("page.md", 18, "y = 2\n", None),
    ]


def test_the_docs_have_snippets_and_few_opt_outs() -> None:
    pages = {s.page for s in ALL_SNIPPETS}
    assert {"README.md", "docs/usage.md"} <= pages
    opted_out = [f"{s.page}:{s.line} ({s.not_run})" for s in ALL_SNIPPETS if s.not_run]
    assert len(opted_out) <= MOST_OPTED_OUT, f"too many snippets not run: {opted_out}"


def test_a_failing_snippet_is_reported_with_its_page_and_line(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = Snippet("docs/usage.md", 7, "x = 1\nclient.load_files(...)\n", None)
    with pytest.raises(
        pytest.fail.Exception, match=r"docs/usage\.md:7 fails at docs/usage\.md:8: NameError"
    ):
        test_every_python_snippet_in_the_docs_runs(broken, sandbox, monkeypatch)


# ------------------------------------------------- the architecture page and the reference

RULE_HOME = re.compile(r"`(runway_client(?:\.\w+)+)`")


def resolve(dotted: str) -> object:
    """The object a dotted name names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(dotted)


def test_every_rule_home_on_the_architecture_page_exists() -> None:
    table = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = table.split("## Where each rule lives", 1)[1].split("\n## ", 1)[0]
    rows = [row for row in table.splitlines() if row.startswith("| ") and "`runway_client" in row]
    assert len(rows) >= 30
    missing = []
    for row in rows:
        home = row.rsplit("|", 2)[1]
        for dotted in RULE_HOME.findall(home):
            try:
                resolve(dotted)
            except (ImportError, AttributeError):
                missing.append(dotted)
    assert not missing, f"docs/architecture.md names rule homes that do not exist: {missing}"


def test_every_public_subpackage_has_a_reference_page() -> None:
    import runway_client

    public = sorted(
        info.name
        for info in pkgutil.iter_modules(runway_client.__path__)
        if not info.name.startswith("_") and info.name != "cli"
    )
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {
        p.name: p.read_text(encoding="utf-8") for p in (REPO / "docs" / "reference").glob("*.md")
    }
    for name in ["runway_client", *(f"runway_client.{n}" for n in public)]:
        page = [f for f, text in pages.items() if f"::: {name}\n" in text]
        assert page, (
            f"no reference page renders {name}: add docs/reference/<page>.md with '::: {name}'"
        )
        assert f"reference/{page[0]}" in config, (
            f"docs/reference/{page[0]} is not in mkdocs.yml's nav"
        )


def test_docstrings_render_as_markdown() -> None:
    spec = importlib.util.spec_from_file_location(
        "rst_docstrings", REPO / "docs" / "_ext" / "rst_docstrings.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    failures, tried = doctest.testmod(module)
    assert tried > 0
    assert failures == 0


# ------------------------------------------------------ examples in the public docstrings


def public_functions() -> dict[str, Callable[..., object]]:
    """Every public function (and fixture) of the documented modules, by dotted name."""
    import runway_client
    import runway_client.testing
    import runway_client.testing.strategies
    import runway_client.wire

    modules = [
        runway_client,
        runway_client.wire,
        runway_client.testing,
        runway_client.testing.strategies,
    ]
    found: dict[str, Callable[..., object]] = {}
    for module in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isfunction(getattr(obj, "__wrapped__", None)):
                found[f"{module.__name__}.{name}"] = obj
    return found


def literal_examples(doc: str) -> list[str]:
    """The ``::`` blocks of a docstring, dedented."""
    blocks: list[str] = []
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        body: list[str] = []
        for following in lines[i + 1 :]:
            if following.strip() and not following.startswith(" "):
                break
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)).strip("\n"))
    return blocks


def test_every_public_function_has_an_example() -> None:
    functions = public_functions()
    assert len(functions) >= 30  # the surface was trimmed (issue 7): 38 functions today
    without = [
        name
        for name, function in functions.items()
        if not any(mark in (inspect.getdoc(function) or "") for mark in (">>>", "::"))
    ]
    assert not without, f"public functions whose docstring has no example (>>> or ::): {without}"


def test_literal_examples_compile_and_call_functions_as_they_are() -> None:
    import runway_client
    import runway_client.wire

    signatures = {
        name: inspect.signature(obj)
        for module in (runway_client, runway_client.wire)
        for name in module.__all__
        if inspect.isfunction(obj := getattr(module, name))
    }
    problems = []
    for dotted, function in public_functions().items():
        for block in literal_examples(inspect.getdoc(function) or ""):
            try:
                tree = ast.parse(block)
            except SyntaxError as error:
                problems.append(f"{dotted}: the example does not compile: {error}")
                continue
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                    continue
                signature = signatures.get(node.func.id)
                if signature is None:
                    continue
                unknown = [
                    k.arg for k in node.keywords if k.arg and k.arg not in signature.parameters
                ]
                if unknown:
                    problems.append(f"{dotted}: the example calls {node.func.id} with {unknown}")
    assert not problems, "\n".join(problems)


def documented_errors() -> dict[str, str]:
    table = (REPO / "docs" / "usage.md").read_text().split("### What a user sees", 1)[1]
    rows = re.findall(r"^\| (.+?) \| `(.+?)` \|$", table, flags=re.MULTILINE)
    return dict(rows)


def as_pattern(documented: str) -> re.Pattern[str]:
    escaped = re.escape(documented).replace("…", ".*").replace(re.escape("<uid>"), "[0-9a-f-]{36}")
    return re.compile(escaped + ".*", flags=re.DOTALL)


def fail(call: Callable[[], object]) -> RunwayError:
    with pytest.raises(RunwayError) as caught:
        call()
    return caught.value


def client_of(
    sb: Sandbox,
    *,
    transport: ScriptedTransport | None = None,
    read_timeout: float = 5.0,
    **changes: str,
) -> RunwayClient:
    client = RunwayClient(
        runway_base_url=sb.runway_base_url,
        auth_base_url=sb.auth_base_url,
        client_id=sb.client_id,
        client_secret=changes.get("client_secret", sb.client_secret),
        partner_code=changes.get("partner_code", sb.partner_code),
        retry=RetryPolicy(backoff_base=0.01),
    )
    if transport is None:  # a given transport brings its own timeouts
        return client.with_options(read_timeout=read_timeout)
    return RunwayClient.from_config(client.config, transport=transport)


def test_the_error_table_shows_what_users_really_see(sat_csv: Path, tmp_path: Path) -> None:
    rows = documented_errors()
    seen: dict[str, RunwayError] = {}

    def load(client: RunwayClient, **changes: object) -> None:
        args: dict[str, object] = {
            "tenant_code": "ea",
            "bundle_name": "assessments/PSAT_SAT",
            "input_files": {"INPUT_FILE": sat_csv},
            "bundle_params": {"TEST_TYPE": "SAT"},
            "school_year": "2526",
            **changes,
        }
        client.load_files(**args)  # type: ignore[arg-type]

    with Sandbox(upload_url_lifetime=0.3) as sb:
        good = client_of(sb)
        seen["a file path that does not exist"] = fail(
            lambda: load(good, input_files={"INPUT_FILE": "/x/sat.csv"})
        )
        seen['`school_year="2527"`'] = fail(lambda: load(good, school_year="2527"))
        seen["wrong client secret"] = fail(
            lambda: load(client_of(sb, client_secret="wrong-secret-1"))
        )
        seen["a partner the client was not granted"] = fail(
            lambda: load(client_of(sb, partner_code="zz"))
        )
        seen["unknown tenant"] = fail(lambda: load(good, tenant_code="nope"))
        seen["a param value not allowed"] = fail(
            lambda: load(good, bundle_params={"TEST_TYPE": "GRE"})
        )
        token = good.token_cache(("create:jobs", "partner:ea")).unwrap()
        spec = prepare_job(
            partner_code="ea",
            tenant_code="ea",
            bundle_name="assessments/PSAT_SAT",
            school_year="2526",
            input_files={"INPUT_FILE": sat_csv},
            bundle_params={"TEST_TYPE": "SAT"},
        ).unwrap()
        job = create_job(good.transport, good.config, token, spec).unwrap()
        time.sleep(0.5)
        seen["upload URL expired"] = upload(good.transport, job).failure()
        tampered_job = create_job(good.transport, good.config, token, spec).unwrap()
        from msgspec.structs import replace

        url = tampered_job.upload_urls["INPUT_FILE"]
        seen["presigned URL altered"] = upload(
            good.transport,
            replace(
                tampered_job, upload_urls={"INPUT_FILE": url.replace("X-Amz-Date=", "X-Amz-Date=1")}
            ),
        ).failure()
    with Sandbox() as sb:
        good = client_of(sb)
        token = good.token_cache(("create:jobs", "partner:ea")).unwrap()
        job = create_job(good.transport, good.config, token, spec).unwrap()
        uploaded = upload(good.transport, job).unwrap()
        start(good.transport, good.config, token, uploaded).unwrap()
        seen["starting a job someone else started"] = start(
            good.transport, good.config, token, uploaded
        ).failure()
        files = {"INPUT_FILE": str(sat_csv)}
        ours = good.request_runway_job(
            "ea", "assessments/PSAT_SAT", files, {"TEST_TYPE": "SAT"}, "2526"
        )
        good.upload_to_s3(ours, files)
        good.start_job(ours)
        seen["`start_job` of a job this client started"] = fail(lambda: good.start_job(ours))
    # the sandbox has stopped: nothing listens there now (the client still holds a token)
    seen["Runway unreachable"] = fail(lambda: load(good))

    def under(route: str, fault: str, **extra: float) -> RunwayError:
        with Sandbox() as faulty:
            faulty.inject(route, fault, times=10, **extra)  # type: ignore[arg-type]
            return fail(lambda: load(client_of(faulty, read_timeout=0.3)))

    seen["the identity provider stays busy (503 on every retry)"] = under(
        "token", "status", status=503
    )
    seen["`POST /jobs` gets no answer (connection reset, or read timeout)"] = under(
        "create_job", "reset_before_answer"
    )
    seen["storage keeps throttling (503 `SlowDown` on every retry)"] = under("upload", "slow_down")
    seen["storage drops the connection mid-upload on every retry"] = under(
        "upload", "reset_mid_body"
    )
    seen["start fails with 500 on every retry"] = under("start", "status", status=500)

    def grow_on_first_put(step: Step, n: int) -> Result[HttpResponse, RunwayError] | None:
        if step == "upload" and n == 1:
            sat_csv.write_bytes(sat_csv.read_bytes() + b"x")
            return Failure(NetworkError("reset", step=step))
        return None

    with Sandbox() as sb:
        seen["the input file changes during the load"] = fail(
            lambda: load(client_of(sb, transport=ScriptedTransport(grow_on_first_put)))
        )
    original = sat_csv.read_bytes()[:-1]
    sat_csv.write_bytes(original)
    with Sandbox(failing_file_names={"sat.csv"}) as sb:
        seen["a wait ends and the run has no output set"] = fail(
            lambda: load(client_of(sb), wait=0.3, poll_interval=0.05)
        )
    with Sandbox() as sb:
        good = client_of(sb)
        receipt = good.load_files(
            tenant_code="ea",
            bundle_name="assessments/MAP_Growth",
            input_files={"INPUT_FILE": sat_csv},
            school_year="2026",
            wait=5,
            poll_interval=0.05,
        )
        assert receipt.output_set is not None
        sb.inject("download", "reset_mid_body", times=10)
        done = receipt.output_set
        seen["a download is cut off on every try"] = fail(
            lambda: good.download(done, tmp_path / "out")
        )

    assert set(seen) == set(rows)
    for what, error in seen.items():
        shown = f"{type(error).__name__}: {error}"
        assert as_pattern(rows[what]).fullmatch(shown), (
            f"{what}: docs say {rows[what]!r}, users see {shown!r}"
        )
