"""A progress line for long jobs: count, images/s, ETA; a summary at the end."""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Redraws one line on a terminal; elsewhere (logs, pipes) prints a line every
    ``log_every`` seconds.  ``quiet`` silences everything but errors."""

    def __init__(self, total: int, *, label: str = "", quiet: bool = False, stream=None, log_every: float = 10.0):
        self.total, self.label, self.quiet = total, label, quiet
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.log_every = log_every
        self.done = self.skipped = self.failed = 0
        self.start = time.perf_counter()
        self._last = time.perf_counter()  # logs: the first line after log_every
        self._finished = False

    @property
    def processed(self) -> int:
        return self.done + self.failed

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.processed / elapsed if elapsed > 0 else 0.0

    def update(self, *, done: int = 0, skipped: int = 0, failed: int = 0) -> None:
        self.done += done
        self.skipped += skipped
        self.failed += failed
        now = time.perf_counter()
        finished = self.processed + self.skipped >= self.total
        if self.quiet or (not self.tty and now - self._last < self.log_every and not finished) or not self.total:
            return
        if finished and self._finished:
            return
        self._finished = finished
        self._last = now
        self._draw(finished)

    def _draw(self, finished: bool) -> None:
        count = self.processed + self.skipped
        rate = self.rate()
        remaining = self.total - count
        eta = _clock(remaining / rate) if rate > 0 else "?"
        if self.tty:
            width = 24
            filled = int(width * count / max(self.total, 1))
            bar = "#" * filled + "." * (width - filled)
            line = f"\r{self.label}[{bar}] {count}/{self.total} {rate:.1f} img/s ETA {eta}"
            if self.failed:
                line += f" ({self.failed} failed)"
            self.stream.write(line + ("\n" if finished else ""))
        else:
            self.stream.write(f"{self.label}{count}/{self.total} {rate:.1f} img/s ETA {eta}\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line that must not be overwritten by the bar (errors are shown even when quiet)."""
        if self.tty and not self.quiet:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def summary(self) -> str:
        elapsed = time.perf_counter() - self.start
        return (f"done {self.done}, skipped {self.skipped} (already there), failed {self.failed} "
                f"in {elapsed:.1f} s ({self.rate():.2f} img/s)")
