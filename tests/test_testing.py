"""``runway_client.testing``: the strategies work with only the library and hypothesis
installed (pytest, werkzeug and PyJWT blocked), and the fixture still serves pytest."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from runway_client.sandbox import Sandbox

README = Path(__file__).resolve().parents[1] / "README.md"

BLOCKER = textwrap.dedent(
    """\
    import importlib.abc, sys

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"pytest", "_pytest", "werkzeug", "jwt"}:
                raise ImportError(f"{name} is not installed (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    """
)


def property_example() -> str:
    text = README.read_text()
    start = text.index("## Property-testing request building")
    block = text.index("```python", start) + len("```python\n")
    return text[block : text.index("```", block)]


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_blocker_blocks() -> None:
    assert "blocked" in run("import pytest").stderr


def test_the_readme_property_example_runs_with_only_the_library_and_hypothesis() -> None:
    done = run(
        property_example()
        + "\nimport sys\nprint(sorted(m for m in ('pytest', 'werkzeug', 'jwt') if m in sys.modules))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]")


def test_every_strategy_draws_without_pytest() -> None:
    done = run(
        "from runway_client.testing import strategies as s\n"
        "for name in s.__all__:\n"
        "    value = getattr(s, name)\n"
        "    (value() if callable(value) and name != 'end_years' and not hasattr(value, 'example') else value).example()\n"
        "print('ok')\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_fixture_gives_a_running_sandbox(sandbox: Sandbox) -> None:
    assert sandbox.runway_base_url.endswith("/api/v1")
