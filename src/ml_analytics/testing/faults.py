"""Fault schedules for :class:`ml_analytics.testing.proxy.FaultProxy`: which requests fail, and how.

A schedule is a rule ``request -> action | None``. Builders count only the requests a ``when``
predicate matches, so "every 3rd part upload" or "the first CompleteMultipartUpload" read as
they sound. Every schedule is deterministic: fractions use a fixed seed.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from .proxy import Request

Rule = Callable[[Request], object]

# Faults as the stores send them.
S3_INTERNAL = ("status", 500, b'<?xml version="1.0"?><Error><Code>InternalError</Code>'
                              b'<Message>We encountered an internal error. Please try again.</Message></Error>')
S3_SLOWDOWN = ("status", 503, b'<?xml version="1.0"?><Error><Code>SlowDown</Code>'
                              b'<Message>Please reduce your request rate.</Message></Error>')
S3_COMPLETE_200_ERROR = ("status", 200, b'<?xml version="1.0"?><Error><Code>InternalError</Code>'
                                        b'<Message>We encountered an internal error.</Message></Error>')
AZURE_SERVER_BUSY = ("status", 503, b'<?xml version="1.0"?><Error><Code>ServerBusy</Code>'
                                    b'<Message>The server is busy.</Message></Error>')
GCS_TOO_MANY = ("status", 429, b'{"error": {"code": 429, "message": "rate limit exceeded"}}')
HTTP_503 = ("status", 503, b"")
RESET_BEFORE = ("reset",)
RESET_DURING = ("reset-mid",)
RESET_AFTER = ("drop-response",)
ACTED_THEN_500 = ("after", 500, b"")


def any_request(_req: Request) -> bool:
    return True


def writes(req: Request) -> bool:
    return req.method in ("PUT", "POST")


def s3_create_multipart(req: Request) -> bool:
    return req.method == "POST" and "uploads" in req.target.split("?", 1)[-1] and "uploadId" not in req.target


def s3_complete_multipart(req: Request) -> bool:
    return req.method == "POST" and "uploadId=" in req.target


class _Counter:
    def __init__(self, when):
        self.when = when
        self.n = 0
        self.lock = threading.Lock()

    def next(self, req) -> int | None:
        if not self.when(req):
            return None
        with self.lock:
            self.n += 1
            return self.n


def every(n: int, action, when=any_request) -> Rule:
    """Every ``n``-th matching request (the n-th, 2n-th, ...)."""
    counter = _Counter(when)

    def rule(req):
        k = counter.next(req)
        return action if k is not None and k % n == 0 else None

    return rule


def burst(start: int, count: int, action, when=any_request) -> Rule:
    """Matching requests number ``start`` .. ``start + count - 1`` (counted from 1)."""
    counter = _Counter(when)

    def rule(req):
        k = counter.next(req)
        return action if k is not None and start <= k < start + count else None

    return rule


def first(action, when=any_request) -> Rule:
    return burst(1, 1, action, when)


def fraction(p: float, action, seed: int, when=any_request) -> Rule:
    """Each matching request with probability ``p``, from a fixed seed (the same run every time)."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def rule(req):
        if not when(req):
            return None
        with lock:
            return action if rng.random() < p else None

    return rule


def always(action, when=any_request) -> Rule:
    return lambda req: action if when(req) else None


def combine(*rules: Rule) -> Rule:
    def rule(req):
        for r in rules:
            action = r(req)
            if action is not None:
                return action
        return None

    return rule


class Counted:
    """A rule that remembers the faults it injected (``fired``), so a test can prove its schedule fired."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.fired: list = []

    def __call__(self, req):
        action = self.rule(req)
        if action is not None:
            self.fired.append(action)
        return action
