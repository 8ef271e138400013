"""Progress of multi-request work: a tqdm bar, or the caller's hook (the notebook's status line)."""

from __future__ import annotations

from typing import Protocol

from .options import ProgressHook

__all__ = ["MIN_REQUESTS", "Progress", "progress_for"]

#: Fewer planned requests than this finish too soon for a bar to help.
MIN_REQUESTS = 3


class Progress(Protocol):
    """What the executors call: tqdm's ``update``/``close``."""

    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


def progress_for(total: int, *, enabled: bool, hook: ProgressHook | None) -> Progress | None:
    """A progress display for ``total`` requests: ``hook``'s when given, else tqdm; None when not worth one."""
    if not enabled or total < MIN_REQUESTS:
        return None
    if hook is not None:
        return _HookProgress(hook, total)
    from tqdm.auto import tqdm

    bar: Progress = tqdm(total=total, desc="tm402", unit="call", leave=False)
    return bar


class _HookProgress:
    """tqdm's update/close, reported to a hook as ``hook(done, total, stage)``."""

    def __init__(self, hook: ProgressHook, total: int) -> None:
        self.hook, self.total, self.done = hook, total, 0
        hook(0, total, "start")

    def update(self, n: int = 1) -> None:
        self.done += n
        self.hook(self.done, self.total, "progress")

    def close(self) -> None:
        self.hook(self.done, self.total, "done")
