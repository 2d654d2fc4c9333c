"""What the command line shows while it works, and how it stops: signals and progress.

Face-layer pieces shared by the commands that load (``load``, ``resume``, ``batch``):

- ``interrupts()``: a context manager that turns SIGINT and SIGTERM into a
  ``threading.Event`` the flows observe (ARCHITECTURE.md, "Signals belong to the
  face"); a second signal exits at once, naming the jobs it knows of;
- ``ProgressView``: an ``on_progress`` callback that draws per-file and overall
  bars on a terminal (``rich``, optional), prints one JSON event per line
  (``--progress json``), or only says the job's uid as soon as it exists and a
  heartbeat while waiting.

Exit statuses after a signal follow the shell's convention, 128 + the signal
number: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO

if TYPE_CHECKING:
    from runway_client._models import LoadReceipt

from runway_client._events import (
    FileProgress,
    FileUploaded,
    JobCreated,
    JobStarted,
    LoadFailed,
    ProgressEvent,
    StillWaiting,
    encode_event,
)

__all__ = [
    "HEARTBEAT_SECONDS",
    "JSON_PROGRESS_SECONDS",
    "Interrupts",
    "ProgressMode",
    "ProgressView",
    "interrupts",
    "progress_mode",
]

JSON_PROGRESS_SECONDS: Final = 1.0
"""``--progress json`` prints a file's progress at most this often (seconds)."""
HEARTBEAT_SECONDS: Final = 30.0
"""While waiting for a run's outputs, a line at most this often (seconds)."""

ProgressMode = Literal["bars", "json", "plain", "none"]
"""``bars`` (a terminal), ``json`` (one event per line), ``plain`` (the job's uid and
heartbeats only), ``none`` (``--quiet``)."""

_NAMES: Final = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class Interrupts:
    """What ``interrupts()`` yields: ``cancel`` (set by the first signal), the
    signal received, and the jobs seen so far (for a message on a hard exit)."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.received: int | None = None
        self._jobs: dict[str, None] = {}
        self._lock = threading.Lock()

    @property
    def exit_code(self) -> int:
        """128 + the signal number (130 for SIGINT, 143 for SIGTERM); 130 if none."""
        return 128 + int(self.received if self.received is not None else signal.SIGINT)

    @property
    def signal_name(self) -> str:
        """``"SIGINT"`` or ``"SIGTERM"`` (``"SIGINT"`` before any signal)."""
        return _NAMES.get(signal.Signals(self.received or signal.SIGINT), "SIGINT")

    def note_job(self, job_uid: str) -> None:
        """Remember a job that exists (told on a hard exit)."""
        with self._lock:
            self._jobs[job_uid] = None

    def jobs(self) -> tuple[str, ...]:
        """The jobs noted so far, in order."""
        with self._lock:
            return tuple(self._jobs)


@contextlib.contextmanager
def interrupts(*, stderr_fd: int = 2) -> Iterator[Interrupts]:
    """Within the block, SIGINT and SIGTERM set ``.cancel`` instead of ending the process.

    The first signal sets the event and says so on stderr: the flows stop at the
    next block or step and the command reports what exists. A second signal (a
    second Ctrl-C) exits at once with 128 + its number, naming the jobs noted so
    far. Outside the main thread nothing is installed (signals reach only it).
    The previous handlers come back at the end of the block.
    """
    state = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def say(text: str) -> None:
        with contextlib.suppress(OSError):
            os.write(stderr_fd, text.encode())

    def handle(number: int, _frame: FrameType | None) -> None:
        if state.cancel.is_set():
            jobs = state.jobs()
            known = f"; jobs created: {', '.join(jobs)} (see the Runway UI)" if jobs else ""
            say(
                f"\nrunway-client: {_NAMES.get(signal.Signals(number), 'signal')} again: exiting at once{known}\n"
            )
            os._exit(128 + number)
        state.received = number
        state.cancel.set()
        say(
            f"\nrunway-client: {_NAMES.get(signal.Signals(number), 'signal')} received: stopping "
            "(no new job; uploads under way are ended). Press Ctrl-C again to exit at once.\n"
        )

    previous = {number: signal.signal(number, handle) for number in _NAMES}
    try:
        yield state
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _size(count: float) -> str:
    """``count`` bytes for people: ``'1.5 MiB'``.

    >>> _size(1536 * 1024)
    '1.5 MiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"  # pragma: no cover


class ProgressView:
    """An ``on_progress`` callback for the command line (thread-safe).

    Args:
        mode: see ``ProgressMode``.
        out: where the ``Started job`` line goes (stdout for the text summary).
        err: where everything else goes (stderr).
        interrupts: told of each job created, for a message on a hard exit.
        clock: seconds, monotonic (tests pin it).

    ``Started job <uid>`` is printed the moment the job starts (unless ``none``),
    ``Created job <uid>`` as soon as it exists, and a heartbeat every
    ``HEARTBEAT_SECONDS`` while waiting for outputs. Bars (``bars``) need ``rich``
    (``pip install 'runway-client[cli]'``); without it they are left out.
    """

    def __init__(
        self,
        mode: ProgressMode,
        *,
        out: TextIO,
        err: TextIO,
        interrupts: Interrupts | None = None,
        started_to_err: bool = False,
        clock: Any = time.monotonic,
    ) -> None:
        self.mode: ProgressMode = mode
        self.out = out
        self.err = err
        self.interrupts = interrupts
        self.started_to_err = started_to_err
        self.started: set[str] = set()
        self._clock = clock
        self._lock = threading.RLock()
        self._last_json: dict[tuple[str, str], float] = {}
        self._last_heartbeat: float | None = None
        self._bars: Any = None
        self._tasks: dict[tuple[str, str], Any] = {}
        self._done: dict[tuple[str, str], int] = {}
        self._overall: dict[str, Any] = {}

    # ----------------------------------------------------------- the callback

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if isinstance(event, JobCreated) and self.interrupts is not None:
                self.interrupts.note_job(event.job_uid)
            if isinstance(event, JobStarted):
                self.started.add(event.job_uid)
            if self.mode == "json":
                self._json(event)
            elif self.mode != "none":
                self._text(event)

    def _json(self, event: ProgressEvent) -> None:
        if isinstance(event, FileProgress) and event.sent < event.total:
            key = (event.job_uid, event.key)
            now = self._clock()
            last = self._last_json.get(key)
            if last is not None and now - last < JSON_PROGRESS_SECONDS:
                return
            self._last_json[key] = now
        self._line(self.err, encode_event(event).decode())

    def _text(self, event: ProgressEvent) -> None:
        if isinstance(event, JobCreated):
            count = len(event.files)
            self._line(
                self.err,
                f"Created job {event.job_uid}: uploading {count} file{'s' if count != 1 else ''}"
                f", {_size(event.total_bytes)}",
            )
            if self.mode == "bars":
                self._open_bars(event)
        elif isinstance(event, FileProgress | FileUploaded):
            self._advance(event)
        elif isinstance(event, JobStarted):
            self._end_bars(event.job_uid)
            self._line(self.err if self.started_to_err else self.out, started_line(event))
        elif isinstance(event, StillWaiting):
            now = self._clock()
            if self._last_heartbeat is None or now - self._last_heartbeat >= HEARTBEAT_SECONDS:
                self._last_heartbeat = now
                self._line(
                    self.err,
                    f"Waiting for the output set of job {event.job_uid}: {event.waited:.0f} s "
                    f"of {event.timeout:g} s",
                )
        elif isinstance(event, LoadFailed):
            self._end_bars(event.job_uid)

    def _line(self, stream: TextIO, text: str) -> None:
        bars = self._bars
        if bars is not None and stream is self.err:
            bars.console.print(text, markup=False, highlight=False, soft_wrap=True)
            return
        stream.write(text + "\n")
        stream.flush()

    # ------------------------------------------------------------------ bars

    def _open_bars(self, event: JobCreated) -> None:
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
        except ImportError:  # an optional extra: without it, no bars
            return
        if self._bars is None:
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.err),
                redirect_stdout=False,
                redirect_stderr=False,
                transient=False,
            )
            self._bars.start()
        bars = self._bars
        self._overall[event.job_uid] = bars.add_task(
            f"job {event.job_uid[:8]} (all files)", total=event.total_bytes
        )
        for key, size in event.files.items():
            self._tasks[(event.job_uid, key)] = bars.add_task(f"  {key}", total=size)

    def _advance(self, event: FileProgress | FileUploaded) -> None:
        bars = self._bars
        task = self._tasks.get((event.job_uid, event.key))
        if bars is None or task is None:
            return
        done = event.sent if isinstance(event, FileProgress) else event.bytes
        self._done[(event.job_uid, event.key)] = done
        bars.update(task, completed=done)
        overall = self._overall.get(event.job_uid)
        if overall is not None:
            total = sum(n for (uid, _key), n in self._done.items() if uid == event.job_uid)
            bars.update(overall, completed=total)

    def _end_bars(self, job_uid: str | None) -> None:
        """The job's load ended: the bars stop when it was the last one drawn (they stay
        on screen), else its own bars go (the loads of a batch come and go)."""
        bars = self._bars
        if bars is None:
            return
        if not {uid for uid in self._overall if uid != job_uid}:
            self._close_bars()
            return
        for key in [k for k in self._tasks if k[0] == job_uid]:
            bars.remove_task(self._tasks.pop(key))
            self._done.pop(key, None)
        if job_uid in self._overall:
            bars.remove_task(self._overall.pop(job_uid))

    def _close_bars(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
            self._tasks.clear()
            self._done.clear()
            self._overall.clear()

    def close(self) -> None:
        """Stop the bars (idempotent)."""
        with self._lock:
            self._close_bars()


def progress_mode(
    requested: str | None, *, quiet: bool, stream: TextIO | None = None
) -> ProgressMode:
    """The ``ProgressMode`` for ``--progress`` (``auto``/``bars``/``json``/``none``) and
    ``--quiet``: ``auto`` draws bars only when ``stream`` is a terminal.

    >>> import io
    >>> progress_mode("auto", quiet=False, stream=io.StringIO())
    'plain'
    >>> progress_mode("json", quiet=True)
    'json'
    """
    if requested == "json":
        return "json"
    if quiet or requested == "none":
        return "none"
    if requested == "bars":
        return "bars"
    # ``stream`` defaults to the ``sys.stderr`` of the moment of the call, not of the
    # import (a module imported lazily under a test's captured stderr kept a closed one)
    return "bars" if (stream if stream is not None else sys.stderr).isatty() else "plain"


def started_line(event: JobStarted | LoadReceipt) -> str:
    """``Started job <uid>``, or, for a job an earlier start got through for, that it was
    not started again (Runway would run it twice: CONTRACT.md, start)."""
    if event.started_earlier:
        return (
            f"Job {event.job_uid} was started earlier: it is not started again "
            "(Runway would run it a second time)"
        )
    return f"Started job {event.job_uid}"
