"""SIGTERM (splunkd at maxtime, a restart) turned into an orderly stop: the run spools what it has
not delivered, then exits.

The signal interrupts only a wait that is safe to abandon (an HTTP request, waiting for the spool
lock); anywhere else it is noted, and the run stops at its next check. So a spool file is never
half-written by the stop itself.
"""
import contextlib
import signal
from typing import Iterator


class Stopped(BaseException):
    """SIGTERM arrived. A BaseException, so that no library's `except Exception` swallows it."""


class StopSignal:
    def __init__(self) -> None:
        self.requested = False
        self._interruptible = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.requested = True
        if self._interruptible:
            self._interruptible = False
            raise Stopped()

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """A wait that SIGTERM may cut short with Stopped."""
        if self.requested:
            raise Stopped()
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False
