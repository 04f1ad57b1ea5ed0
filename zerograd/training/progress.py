"""What the loop shows while it runs: a progress bar per epoch and one summary line after it.

Where the bar goes depends on where the output goes:

- a terminal or a Jupyter notebook: ``tqdm.auto`` (a text bar, or a widget in Jupyter),
  with the running loss and tqdm's rate, removed when the epoch ends;
- anything else (a CI log, a file): no carriage returns, just a plain line every
  ``PLAIN_EVERY`` seconds for epochs long enough to need one;
- a terminal without tqdm: a minimal ``[####....] 12/40`` bar.

Then one summary line per epoch goes to ``log`` (``print`` by default).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable

PLAIN_EVERY = 30.0  # seconds between plain progress lines in logs


def in_notebook() -> bool:
    """Whether we run in a Jupyter kernel, where tqdm.auto shows a widget."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ipython = shell.get_ipython() if hasattr(shell, "get_ipython") else None
    return type(ipython).__name__ == "ZMQInteractiveShell"


def _interactive() -> bool:
    try:
        return sys.stderr.isatty() or in_notebook()
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return False


class _PlainBar:
    """A minimal progress bar on stderr for a terminal without tqdm."""

    width = 30

    def __init__(self, total: int | None, desc: str, initial: int) -> None:
        self.total, self.desc, self.n = total, desc, initial

    def update(self, postfix: str) -> None:
        self.n += 1
        if self.total:
            done = self.width * min(self.n, self.total) // self.total
            bar = f"[{'#' * done}{'.' * (self.width - done)}] {self.n}/{self.total}"
        else:
            bar = f"{self.n}"
        sys.stderr.write(f"\r{self.desc} {bar} {postfix}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\r" + " " * (len(self.desc) + self.width + 40) + "\r")
        sys.stderr.flush()


class _PlainLines:
    """No bar: a line every PLAIN_EVERY seconds, for logs that keep every character."""

    def __init__(self, total: int | None, desc: str, initial: int,
                 log: Callable[[str], None]) -> None:
        self.total, self.desc, self.n, self.log = total, desc, initial, log
        self.start = self.last = time.perf_counter()
        self.first = initial

    def update(self, postfix: str) -> None:
        self.n += 1
        now = time.perf_counter()
        if now - self.last >= PLAIN_EVERY:
            self.last = now
            rate = (self.n - self.first) / (now - self.start)
            of = f"/{self.total}" if self.total else ""
            self.log(f"{self.desc}: {self.n}{of} batches, {postfix}, {rate:.1f} batches/s")

    def close(self) -> None:
        pass


class _Tqdm:
    def __init__(self, tqdm, total: int | None, desc: str, initial: int) -> None:
        self.bar = tqdm(total=total, desc=desc, initial=initial, leave=False, unit="batch")

    def update(self, postfix: str) -> None:
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def epoch_progress(total: int | None, desc: str, initial: int = 0, enabled: bool = True,
                   log: Callable[[str], None] = print):
    """The progress display of one epoch: ``update(postfix)`` per batch, then ``close()``.
    None when disabled."""
    if not enabled:
        return None
    if not _interactive():
        return _PlainLines(total, desc, initial, log)
    try:
        # The package by its own name first: tqdm.auto's import would find a missing or
        # hidden tqdm only through its parent.
        import tqdm as _package  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        return _PlainBar(total, desc, initial)
    return _Tqdm(tqdm, total, desc, initial)


def progress(iterable: Iterable, total: int, desc: str, enabled: bool = True):
    """``iterable`` with an epoch's progress display around it (for hand-written loops)."""
    bar = epoch_progress(total, desc, enabled=enabled)
    if bar is None:
        yield from iterable
        return
    try:
        for item in iterable:
            yield item
            bar.update("")
    finally:
        bar.close()


def format_seconds(seconds: float) -> str:
    """Three significant digits, in ms under a second: '0.52 ms', '48.1 ms', '1.23 s', '125 s'."""
    value, unit = (seconds * 1e3, "ms") if seconds < 1 else (seconds, "s")
    decimals = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:.{decimals}f} {unit}"


def _label(column: str, prefixes: tuple[str, ...]) -> str:
    """'accuracy' -> 'train acc', 'val_loss' -> 'val loss', 'loss' -> 'loss'."""
    short = column.replace("accuracy", "acc")
    for prefix in prefixes:
        if column.startswith(prefix + "_"):
            return short.replace("_", " ", 1)
    return short if column == "loss" else "train " + short.replace("_", " ")


def format_epoch(record: dict, epochs: int, prefixes: tuple[str, ...] = ("val", "test")) -> str:
    """One summary line: ``epoch  3/30  loss 0.4210  train acc 0.8800  val loss 0.5012
    val acc 0.8500  (12.3 ms)``."""
    text = f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}"
    for column, value in record.items():
        if column in ("epoch", "seconds"):
            continue
        if column == "lr":
            text += f"  lr {value:.3g}"
        else:
            text += f"  {_label(column, prefixes)} {value:.4f}"
    if "seconds" in record:
        text += f"  ({format_seconds(record['seconds'])})"
    return text


def running_postfix(sums: dict, count: int) -> str:
    """The running means shown next to the bar: 'loss 0.4210 accuracy 0.8800'."""
    if not count:
        return ""
    return " ".join(f"{k} {v / count:.4f}" for k, v in sums.items())


__all__ = ["PLAIN_EVERY", "epoch_progress", "format_epoch", "format_seconds", "in_notebook",
           "progress", "running_postfix"]
