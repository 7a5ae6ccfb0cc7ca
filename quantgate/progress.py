"""Progress bars for long work (scoring, calibration, accuracy-control trials), with tqdm.

Under pytest the plugin hands in a stream that writes past pytest's capture to its terminal
(`configure`); on a terminal tqdm redraws one line, in a log (CI, no TTY) each update is a line of
its own (nested bars do not move the cursor: no escape codes in the log) and updates come at most every
NON_TTY_INTERVAL seconds. Outside pytest: tqdm's stderr.
"""

from __future__ import annotations

import sys
from typing import Any

NON_TTY_INTERVAL = 10.0  # seconds between lines in a CI log: a long build shows it is alive, not a flood
DELAY = 2.0
_stream: Any = None


def configure(stream: Any) -> Any:
    """Where bars go (a file-like object with isatty()); None: stderr. Returns where they went before."""
    global _stream
    before, _stream = _stream, stream
    return before


def bar(total: int | None = None, desc: str = "", unit: str = "it", **kwargs: Any):
    """A tqdm bar: items/s and ETA when `total` is known, a count and rate otherwise. Shown only once the
    work has taken DELAY seconds: short work stays silent."""
    from tqdm import tqdm  # noqa: PLC0415 -- tqdm only when a bar is shown

    stream = _stream or sys.stderr
    tty = stream.isatty()
    return tqdm(total=total, desc=f"[quantgate] {desc}", unit=unit, file=stream,
                mininterval=0.5 if tty else NON_TTY_INTERVAL, maxinterval=NON_TTY_INTERVAL * 3,
                ascii=not tty, dynamic_ncols=tty, ncols=None if tty else 100, leave=True,
                **{"delay": DELAY, **({} if tty else {"position": 0}), **kwargs})


class Tracked:
    """An iterable that advances a bar as it is consumed (NNCF iterates its calibration dataset once per
    statistic it collects: each pass is shown from the start)."""

    def __init__(self, items: list, desc: str, unit: str = "sample") -> None:
        self.items, self.desc, self.unit = items, desc, unit

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        with bar(len(self.items), self.desc, self.unit) as progress:
            for item in self.items:
                yield item
                progress.update(1)
