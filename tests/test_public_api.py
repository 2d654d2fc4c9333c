"""The public surface is exactly ``__all__``, and each public name is documented."""

from __future__ import annotations

import inspect

import runway_client


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(runway_client) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(runway_client, name))}
    assert set(runway_client.__all__) == public - modules
    assert sorted(runway_client.__all__) == runway_client.__all__


def test_every_public_name_has_a_docstring() -> None:
    for name in runway_client.__all__:
        obj = getattr(runway_client, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"


def test_importing_the_package_needs_only_the_core_dependencies() -> None:
    import subprocess
    import sys

    code = (
        "import sys, runway_client; "
        "extra = {'werkzeug', 'jwt', 'hypothesis', 'pytest'} & {m.split('.')[0] for m in sys.modules}; "
        "print(sorted(extra))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "[]"
