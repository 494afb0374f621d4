"""One retry policy, and the one loop that applies it.

Transient failures are retried with capped exponential backoff and full jitter, up to ``max_retries``
retries and none started once ``total_timeout`` seconds have passed since the first attempt. What is
transient is decided in one place: the error's ``retryable`` flag, which for every HTTP answer comes
from :data:`ml_analytics.errors.STATUS_ERRORS` (5xx, 408, 429 and no answer at all are retried;
401, 403, 404, 409 and 412 are not). ``[COMMON]`` sets ``max_retries``, ``retry_timeout`` (seconds),
``connect_timeout`` and ``request_timeout``.

:meth:`RetryPolicy.run` is the loop every hand-made request path uses (the stores' HTTP requests,
GCS resumable sessions, the Druid client). Libraries with retry loops of their own (obstore,
azure-storage-blob, google-cloud-storage, boto3) get this policy translated into their settings by
the provider module that uses them, never here: this module imports no SDK.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def _retryable(exc: BaseException) -> bool:
    return bool(getattr(exc, "retryable", False))


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 10  # like object_store: 10 retries within total_timeout (3 min)
    initial_backoff: float = 0.1
    max_backoff: float = 8.0
    total_timeout: float = 180.0
    connect_timeout: float = 10.0
    request_timeout: float = 300.0

    @classmethod
    def from_config(cls, config) -> "RetryPolicy":
        from .config import COMMON_SECTION

        values = {}
        for key, field, whole in (("max_retries", "max_retries", True), ("retry_timeout", "total_timeout", False),
                                  ("connect_timeout", "connect_timeout", False),
                                  ("request_timeout", "request_timeout", False)):
            value = config.number(COMMON_SECTION, key, whole=whole)
            if value is not None:
                values[field] = value
        return cls(**values)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): capped exponential, full jitter."""
        return random.uniform(0.5, 1.0) * min(self.max_backoff, self.initial_backoff * 2 ** attempt)

    def deadline(self, started: float | None = None) -> float:
        """The monotonic time after which no retry starts, for a run of attempts begun at ``started``."""
        return (time.monotonic() if started is None else started) + self.total_timeout

    def run(self, attempt: Callable[[int], T], *, attempts: int | None = None,
            retryable: Callable[[BaseException], bool] = _retryable, what: str = "request") -> T:
        """Call ``attempt(n)`` (n = 0, 1, ...) until it returns; retry what ``retryable`` says may heal.

        At most ``max_retries`` retries (or ``attempts`` attempts in all), and none once ``total_timeout``
        seconds have passed since the first one: the last error is raised as it is. A stop request
        (Ctrl-C, see :mod:`ml_analytics.interrupt`) ends the wait between attempts.
        """
        from . import interrupt

        tries = self.max_retries + 1 if attempts is None else max(1, attempts)
        deadline = self.deadline()
        n = 0
        while True:
            try:
                return attempt(n)
            except Exception as e:
                if not retryable(e) or n + 1 >= tries:
                    raise
                pause = self.backoff(n)
                if time.monotonic() + pause >= deadline:
                    raise
                log.debug("%s failed (%s), retry %d in %.2f s", what, type(e).__name__, n + 1, pause)
            _sleep(pause, interrupt)
            n += 1


def _sleep(seconds: float, interrupt) -> None:
    """Sleep, waking every 0.1 s to see whether a stop was requested."""
    end = time.monotonic() + seconds
    while True:
        interrupt.check()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.1, left))
