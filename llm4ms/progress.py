"""Progress for long steps: a bar with total and ETA on a terminal, periodic log lines otherwise.

tqdm alone shows nothing when stderr is not a terminal (logs, CI, `2> file`), so a long first run looked
stuck there; `Progress` writes an INFO line every `interval` seconds instead (the CLI shows llm4ms INFO
lines), and a last line when it closes.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Optional

log = logging.getLogger("llm4ms.progress")


def format_seconds(seconds: float) -> str:
    """'45 s', '2 min 05 s', '1 h 02 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """Count work done towards `total` (None if unknown).

    `enabled`: False shows nothing; None or True show a tqdm bar when stderr is a terminal and periodic
    log lines otherwise. Use as a context manager or call `close()`.
    """

    def __init__(self, total: Optional[int], desc: str, unit: str, enabled: Optional[bool] = None,
                 initial: int = 0, interval: float = 20.0, logger: Optional[logging.Logger] = None,
                 stream=None, clock=time.monotonic) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self.start_n = initial
        self.interval = interval
        self.log = logger or log
        self.clock = clock
        self.start = self.last = clock()
        self.closed = False
        self.bar = None
        self.lines = enabled is not False and not _is_terminal(stream or sys.stderr)
        if enabled is not False and not self.lines:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, leave=False,
                            file=stream or sys.stderr)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close(finished=exc[0] is None)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.lines and self.clock() - self.last >= self.interval and not (self.total and self.n >= self.total):
            self.last = self.clock()
            self.log.info("%s", self.status())

    def status(self) -> str:
        elapsed = self.clock() - self.start
        done = f"{self.n:,}/{self.total:,}" if self.total else f"{self.n:,}"
        text = f"{self.desc}: {done} {self.unit}"
        if self.total:
            text += f" ({100 * self.n / self.total:.0f} %)"
        text += f", {format_seconds(elapsed)} elapsed"
        rate = (self.n - self.start_n) / elapsed if elapsed > 0 else 0.0
        if self.total and rate > 0 and self.n < self.total:
            text += f", about {format_seconds((self.total - self.n) / rate)} left"
        return text

    def close(self, finished: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        if self.lines and finished:
            self.log.info("%s: %s %s in %s", self.desc, f"{self.n:,}", self.unit,
                          format_seconds(self.clock() - self.start))
