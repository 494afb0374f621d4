"""Stopping a batch on Ctrl-C or SIGTERM.

The command installs handlers for SIGINT and SIGTERM that only *request* a stop; the transfer
engine then starts no new upload, big uploads stop between blocks (their provider aborts the
multipart upload or drops the staged blocks, so the key keeps what it held before), and the
command reports what was and was not stored before exiting 130 (SIGINT) or 143 (SIGTERM). A
second signal ends the process at once.
"""

from __future__ import annotations

import signal
import threading

from .errors import MLAnalyticsError

_requested = threading.Event()
_signal: list[int] = []


class Interrupted(MLAnalyticsError):
    """The run was asked to stop (Ctrl-C / SIGTERM)."""

    exit_code = 130


def request(signum: int = signal.SIGINT) -> None:
    _signal[:] = [signum]
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise :class:`Interrupted` if a stop was requested (called between blocks of a big upload)."""
    if _requested.is_set():
        raise Interrupted(f"interrupted by {signal.Signals(_signal[0]).name if _signal else 'a signal'}")


def exit_code() -> int:
    """128 + the signal number: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + (_signal[0] if _signal else signal.SIGINT)


def reset() -> None:
    _requested.clear()
    _signal.clear()


_previous: dict = {}


def install() -> None:
    """First SIGINT/SIGTERM: request a stop. Second: the default action (end at once).

    For the uploads only: :func:`restore` puts the previous handlers back, so a wait that follows
    (Druid's task) is interrupted the ordinary way (KeyboardInterrupt, exit 130)."""

    def handler(signum, frame):
        if _requested.is_set():
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        request(signum)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            _previous.setdefault(sig, signal.signal(sig, handler))


def restore() -> None:
    if threading.current_thread() is threading.main_thread():
        for sig, old in list(_previous.items()):
            signal.signal(sig, old)
            del _previous[sig]
