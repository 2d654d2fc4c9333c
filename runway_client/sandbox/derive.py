"""The files a simulated run writes from its inputs (CONTRACT.md "Output sets").

- ``studentAssessments.jsonl``: one JSON object per data row (header -> values) of every
  input that is delimited text, inputs in file-key order (sorted). ``.csv`` is
  comma-separated; ``.txt``/``.tsv`` are sniffed (tab, comma or pipe; comma when the
  sniffer cannot tell); other inputs contribute no rows. Blank lines are skipped; a row
  shorter than the header gets ``null`` for the missing columns, a longer one keeps the
  extra values in a list under ``"_extra"``.
- ``run_summary.json``: ``{"jobUid", "rows": <rows written>, "inputs": {key: name}}``.

Rows are streamed from disk to disk. Text is read as UTF-8 (a BOM dropped) when the whole
file decodes so, else as Latin-1. With ``compress``, files are written gzip-compressed
(an object stored with ``Content-Encoding: gzip``).

>>> delimiter_for("a.csv", "x\\ty\\n"), delimiter_for("a.TSV", "x|y|z\\n1|2|3\\n"), delimiter_for("a.xlsx", "")
(',', '|', None)
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, cast

STUDENT_ASSESSMENTS: Final = "studentAssessments.jsonl"
RUN_SUMMARY: Final = "run_summary.json"
EXTRA_KEY: Final = "_extra"
CHUNK_SIZE: Final = 1024 * 1024
_SNIFF_SIZE: Final = 64 * 1024
_SNIFFED_SUFFIXES: Final = frozenset({".txt", ".tsv"})
DELIMITED_SUFFIXES: Final = frozenset({".csv", *_SNIFFED_SUFFIXES})


@dataclass(frozen=True, slots=True)
class RunInput:
    """One uploaded input: its file key, file name (as sent) and where it is on disk."""

    key: str
    name: str
    path: Path


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """One output written to disk: name, path, and size and MD5 of the bytes on disk."""

    name: str
    path: Path
    size: int
    md5: str


def delimiter_for(name: str, sample: str) -> str | None:
    """The delimiter of the input ``name`` given the start of its text, or ``None``."""
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return ","
    if suffix not in _SNIFFED_SUFFIXES:
        return None
    try:
        return csv.Sniffer().sniff(sample, delimiters="\t,|").delimiter
    except csv.Error:
        return ","


def text_encoding(path: Path) -> str:
    """``utf-8-sig`` when the whole file decodes as UTF-8, else ``latin-1`` (checked in chunks)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK_SIZE):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8-sig"


def records(run_input: RunInput) -> Iterator[dict[str, object]]:
    """The data rows of a delimited-text input as header -> value objects (none otherwise)."""
    if Path(run_input.name).suffix.lower() not in DELIMITED_SUFFIXES:
        return
    encoding = text_encoding(run_input.path)
    with run_input.path.open(encoding=encoding, newline="") as text:
        delimiter = delimiter_for(run_input.name, text.read(_SNIFF_SIZE))
        if delimiter is None:
            return
        text.seek(0)
        rows = csv.reader(text, delimiter=delimiter)
        header = next(rows, None)
        if header is None:
            return
        for row in rows:
            if not row or row == [""]:
                continue
            record: dict[str, object] = {}
            for index, column in enumerate(header):
                record[column] = row[index] if index < len(row) else None
            if len(row) > len(header):
                record[EXTRA_KEY] = row[len(header) :]
            yield record


def _digest(path: Path) -> tuple[int, str]:
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_SIZE):
            md5.update(chunk)
            size += len(chunk)
    return size, md5.hexdigest()


def _open_output(stack: ExitStack, path: Path, compress: bool) -> BinaryIO:
    raw: BinaryIO = stack.enter_context(path.open("wb"))
    if not compress:
        return raw
    # mtime=0 and no file name: the same content always compresses to the same bytes.
    compressed = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
    stack.callback(compressed.close)
    return cast(BinaryIO, compressed)


def _write(path: Path, compress: bool, lines: Iterator[bytes]) -> None:
    with ExitStack() as stack:
        stream = _open_output(stack, path, compress)
        for line in lines:
            stream.write(line)


def derive_outputs(
    job_uid: str, inputs: Sequence[RunInput], directory: Path, *, compress: bool = False
) -> tuple[WrittenFile, ...]:
    """Write the run's outputs into ``directory`` (created); returns them in listing order."""
    directory.mkdir(parents=True, exist_ok=True)
    ordered = sorted(inputs, key=lambda item: item.key)
    counted = [0]

    def assessment_lines() -> Iterator[bytes]:
        for run_input in ordered:
            for record in records(run_input):
                counted[0] += 1
                yield (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")

    assessments = directory / STUDENT_ASSESSMENTS
    _write(assessments, compress, assessment_lines())
    summary = {
        "jobUid": job_uid,
        "rows": counted[0],
        "inputs": {run_input.key: run_input.name for run_input in ordered},
    }
    summary_path = directory / RUN_SUMMARY
    _write(summary_path, compress, iter([json.dumps(summary, indent=2).encode("utf-8")]))
    return tuple(
        WrittenFile(path.name, path, *_digest(path)) for path in (assessments, summary_path)
    )
