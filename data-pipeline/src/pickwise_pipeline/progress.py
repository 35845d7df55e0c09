"""Progress of long pipeline work: a tqdm bar on a terminal, nothing when the output is not a terminal or
``CI`` is set, and always one closing summary line ``<what>: <rows> rows in <s> s (<rate>/s)`` on stderr.

stdout stays reserved for the commands' results (their last line is one JSON object that scripts parse), so
both the bar and the summary go to stderr::

    with Progress("ingest: embed", total=len(texts)) as progress:
        for batch in batches:
            ...
            progress.update(len(batch))
    # stderr: "ingest: embed: 3903 rows in 21.4 s (182.4/s)"

    for query in track(queries, "evaluate hybrid"):
        ...
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import IO, Any, TypeVar

T = TypeVar("T")


def interactive(stream: IO[str] | None = None) -> bool:
    """True when a bar may be drawn: ``stream`` (stderr by default) and stdout are terminals and ``CI`` is
    unset or empty. Piped, redirected or CI output gets no bar (no carriage-return noise in logs)."""
    if os.environ.get("CI"):
        return False
    stream = stream if stream is not None else sys.stderr
    return _isatty(stream) and _isatty(sys.stdout)


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def summary_line(what: str, rows: int, seconds: float) -> str:
    """``"<what>: <rows> rows in <s> s (<rate>/s)"`` — one format for every command (a row is the command's
    unit of work: a catalog row, a query, a request), seconds and rate with one decimal."""
    rate = rows / seconds if seconds > 0 else 0.0
    return f"{what}: {rows} rows in {seconds:.1f} s ({rate:.1f}/s)"


class Progress:
    """Count rows of one piece of long work; a bar while it runs on a terminal, the summary when it ends.

    ``total`` may be unknown (None): the bar then shows a count and a rate; ``unit`` only names the bar's
    count. ``summary=False`` keeps the bar but prints no summary (a step whose command prints its own);
    ``quiet=True`` shows nothing at all."""

    def __init__(self, what: str, total: int | None = None, *, unit: str = "rows", stream: IO[str] | None = None,
                 summary: bool = True, quiet: bool = False) -> None:
        self.what = what
        self.total = total
        self.unit = unit
        self.rows = 0
        self.quiet = quiet
        self.print_summary = summary and not quiet
        self._stream = stream if stream is not None else sys.stderr
        self._started = time.perf_counter()
        self._ended: float | None = None
        self._bar: Any = None
        if not quiet and interactive(self._stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=what, unit=f" {unit}", file=self._stream, dynamic_ncols=True,
                             leave=False)

    @property
    def elapsed_s(self) -> float:
        end = self._ended if self._ended is not None else time.perf_counter()
        return end - self._started

    def update(self, n: int = 1) -> None:
        self.rows += n
        if self._bar is not None:
            self._bar.update(n)

    def summary(self) -> str:
        return summary_line(self.what, self.rows, self.elapsed_s)

    def close(self) -> None:
        if self._ended is not None:
            return
        self._ended = time.perf_counter()
        if self._bar is not None:
            self._bar.close()
        if self.print_summary:
            print(self.summary(), file=self._stream, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def track(iterable: Iterable[T], what: str, total: int | None = None, *, unit: str = "rows",
          stream: IO[str] | None = None, summary: bool = True, quiet: bool = False) -> Iterator[T]:
    """Yield from ``iterable`` counting one row per item; the summary is printed when it is exhausted
    (or the loop is left early). ``total`` defaults to ``len(iterable)`` when it has one."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(what, total, unit=unit, stream=stream, summary=summary, quiet=quiet) as progress:
        for item in iterable:
            yield item
            progress.update()
