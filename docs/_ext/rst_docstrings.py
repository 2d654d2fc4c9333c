"""A griffe extension: show this project's reST-flavoured docstrings well in Markdown.

The docstrings are written for ``help()`` and doctest: ``>>>`` sessions and ``::``
literal blocks. Markdown would read a ``>>>`` line as a quote (and ``[...]`` output as
a link), so each doctest run becomes a ``pycon`` fence and a trailing ``::`` becomes
``:`` (the indented block after it is already a Markdown code block). Nothing else in
a docstring changes. Wired in ``mkdocs.yml`` (``extensions:`` of the python handler).
"""

from __future__ import annotations

from typing import Any

import griffe


def markdown_of(text: str) -> str:
    r"""Fence each ``>>>`` run (up to the next blank line) and turn a trailing ``::`` into ``:``.

    >>> markdown_of("Reads a year::\n\n    x").split("\n")
    ['Reads a year:', '', '    x']
    >>> markdown_of("A sum:\n\n>>> 1 + 1\n2\n\nEnd.").split("\n")
    ['A sum:', '', '```pycon', '>>> 1 + 1', '2', '```', '', 'End.']
    """
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    fence = "`" * 3
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}{fence}pycon")
            while i < len(lines) and lines[i].strip():
                out.append(lines[i])
                i += 1
            out.append(f"{indent}{fence}")
            continue
        if stripped == "::":
            out.append("")
        elif line.endswith("::"):
            out.append(line[:-1])
        else:
            out.append(line)
        i += 1
    return "\n".join(out)


class RstDocstrings(griffe.Extension):
    """Rewrite every object's docstring with ``markdown_of`` as griffe loads it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_of(obj.docstring.value)
