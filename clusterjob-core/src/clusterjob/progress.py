"""Progress of a wait on many jobs: how many are pending, running, completed, failed.

``wait_all``, ``as_completed`` and ``as_completed_async`` update one display per
poll cycle, in place:

- with the optional extra ``clusterjob-core[progress]`` (tqdm), a ``tqdm.auto`` bar:
  the notebook widget in Jupyter (tqdm needs ``ipywidgets`` there; without it, tqdm
  falls back to its text bar), a text bar in a terminal;
- without tqdm, one plain status line, redrawn with ``\\r`` (a terminal and Jupyter's
  output area both overwrite the line). Nothing else changes without the extra.

Shown by default only where someone watches (stderr is a terminal, or the code runs
in a Jupyter kernel); ``progress=True`` forces it, ``progress=False`` turns it off.
Forced onto a stream nobody watches (a log file, CI), it prints one plain line per
change instead of redrawing, so the log stays readable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol, TextIO

from clusterjob.status import CANCELLED, COMPLETED, FAILED, RUNNING

__all__ = [
    "LineProgress",
    "NoProgress",
    "ProgressDisplay",
    "StatusCounts",
    "TqdmProgress",
    "is_watched",
    "progress_display",
]

#: What the display is called (the bar's description, the line's prefix).
LABEL = "clusterjob"


class StatusCounts(NamedTuple):
    """How many of the jobs waited on are in each state (unknown counts as pending)."""

    pending: int
    running: int
    completed: int
    failed: int
    cancelled: int

    @classmethod
    def of(cls, statuses: Iterable[int | None]) -> StatusCounts:
        statuses = list(statuses)
        return cls(
            pending=sum(s not in (RUNNING, COMPLETED, FAILED, CANCELLED) for s in statuses),
            running=statuses.count(RUNNING),
            completed=statuses.count(COMPLETED),
            failed=statuses.count(FAILED),
            cancelled=statuses.count(CANCELLED),
        )

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def total(self) -> int:
        return self.finished + self.pending + self.running

    def summary(self) -> str:
        """``'3 pending, 1 running, 5 completed, 1 failed'`` (and cancelled, when there are any)."""
        parts = [
            f"{self.pending} pending",
            f"{self.running} running",
            f"{self.completed} completed",
            f"{self.failed} failed",
        ]
        if self.cancelled:
            parts.append(f"{self.cancelled} cancelled")
        return ", ".join(parts)


class ProgressDisplay(Protocol):
    """What the waits call: ``update`` after each poll cycle, ``close`` once at the end."""

    def update(self, counts: StatusCounts) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    """Shows nothing (progress off, or nobody watching)."""

    def update(self, counts: StatusCounts) -> None:
        pass

    def close(self) -> None:
        pass


class LineProgress:
    """One plain status line: redrawn in place (``in_place``), else printed once per change."""

    def __init__(self, stream: TextIO, in_place: bool) -> None:
        self.stream = stream
        self.in_place = in_place
        self.last = ""
        self.drawn = False

    def update(self, counts: StatusCounts) -> None:
        line = f"[{LABEL}] {counts.finished}/{counts.total} finished: {counts.summary()}"
        if line == self.last:
            return
        if self.in_place:
            # Padded to the previous line's length: a shorter line leaves no residue.
            self.stream.write("\r" + line.ljust(len(self.last)))
            self.drawn = True
        else:
            self.stream.write(line + "\n")
        self.last = line
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


class TqdmProgress:
    """A ``tqdm.auto`` bar: finished jobs out of all, the counts as its postfix."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    @classmethod
    def open(cls, total: int, stream: TextIO) -> TqdmProgress | None:
        """A bar on ``stream`` (ignored by the notebook widget), or None without tqdm."""
        try:
            # Imported here, not at the top: tqdm is the optional extra
            # clusterjob-core[progress], and importing tqdm.auto costs ~150 ms that
            # `import clusterjob` and the CLI should not pay when no bar is shown.
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return cls(tqdm(total=total, desc=LABEL, unit="job", file=stream, leave=True))

    def update(self, counts: StatusCounts) -> None:
        self.bar.n = counts.finished
        self.bar.set_postfix_str(counts.summary(), refresh=False)
        self.bar.refresh()  # once per poll cycle: tqdm's own rate limit would drop updates

    def close(self) -> None:
        self.bar.close()


def in_jupyter_kernel() -> bool:
    """Whether this process is a Jupyter kernel (tqdm.auto's test; IPython is not imported)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def is_watched(stream: TextIO) -> bool:
    """Whether someone sees ``stream`` live: a terminal, or a Jupyter output area."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty()) or in_jupyter_kernel()


def progress_display(
    total: int, enabled: bool | None = None, stream: TextIO | None = None
) -> ProgressDisplay:
    """The display for a wait on ``total`` jobs.

    ``enabled`` None shows it only where someone watches (:func:`is_watched`);
    True always; False never. ``stream`` defaults to ``sys.stderr`` as it is now.
    """
    stream = sys.stderr if stream is None else stream
    watched = is_watched(stream)
    if enabled is False or total == 0 or (enabled is None and not watched):
        return NoProgress()
    if watched:
        bar = TqdmProgress.open(total, stream)
        if bar is not None:
            return bar
    return LineProgress(stream, in_place=watched)
