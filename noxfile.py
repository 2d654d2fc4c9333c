"""The test suite on every supported Python: ``nox -s tests-3.12`` (or ``nox`` for all).

CI (``.ci/run``) runs the README's test command on ``python3`` (3.11) first, then the
sessions for 3.12 and 3.13 with pyenv's interpreters on ``PATH``. Each session builds
its own virtualenv under ``.nox/`` with the ``dev`` extra, exactly as a user would.
"""

from __future__ import annotations

import nox

PYTHONS = ["3.11", "3.12", "3.13"]

nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = True


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """``pip install -e '.[dev]'`` then the whole suite (doctests included)."""
    session.install("-q", "-e", ".[dev]")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs)
