"""One retry policy for every provider, translated into each engine's own settings.

Transient failures are retried with exponential backoff and jitter, up to ``max_retries``
retries and ``total_timeout`` seconds: 5xx answers, 429 / 408 / S3 ``SlowDown`` / Azure
``ServerBusy``, connection resets and timeouts, and S3's "200 with an error body". Single PUTs,
each multipart part and the completion call are retried (they are idempotent for the same
bytes); authentication, permission and not-found errors never are.

obstore (S3 family), azure-core (Azure) and google-api-core (GCS) each implement this policy
natively; this module only fills their settings from one place, ``[COMMON]`` keys
``max_retries``, ``retry_timeout`` (seconds), ``connect_timeout`` and ``request_timeout``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


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

    # -- obstore ---------------------------------------------------------------------------------
    def obstore_retry_config(self) -> dict:
        return {"max_retries": self.max_retries, "retry_timeout": timedelta(seconds=self.total_timeout),
                "backoff": {"init_backoff": timedelta(seconds=self.initial_backoff),
                            "max_backoff": timedelta(seconds=self.max_backoff), "base": 2}}

    def obstore_client_options(self) -> dict:
        return {"connect_timeout": timedelta(seconds=self.connect_timeout),
                "timeout": timedelta(seconds=self.request_timeout)}

    # -- azure-core ----------------------------------------------------------------------------------
    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): capped exponential, full jitter."""
        import random

        return random.uniform(0.5, 1.0) * min(self.max_backoff, self.initial_backoff * 2 ** attempt)

    def azure_kwargs(self) -> dict:
        """azure-storage-blob settings. Its own retry policy (15 s first backoff, no overall deadline) is
        replaced by ours: at most ``max_retries`` retries, none started once ``total_timeout`` seconds
        have passed since the first attempt (the backoff is cut to what is left), each attempt bounded by
        ``connect_timeout`` and ``request_timeout`` (between bytes)."""
        import time

        from azure.storage.blob import ExponentialRetry

        policy = self

        class _Retry(ExponentialRetry):
            def configure_retries(self, request):
                settings = super().configure_retries(request)
                settings["deadline"] = time.monotonic() + policy.total_timeout
                return settings

            def get_backoff_time(self, settings):
                return min(policy.backoff(settings["count"]), max(0.0, settings["deadline"] - time.monotonic()))

            def increment(self, settings, request, response=None, error=None):
                if time.monotonic() >= settings["deadline"]:
                    return False
                return super().increment(settings, request, response, error)

        n = self.max_retries
        return {"retry_policy": _Retry(retry_total=n, retry_connect=n, retry_read=n, retry_status=n,
                                       retry_to_secondary=False),
                "connection_timeout": self.connect_timeout, "read_timeout": self.request_timeout}

    # -- google-api-core ---------------------------------------------------------------------------
    def google_retry(self):
        """google-cloud-storage's own predicate (it knows its transport's errors: 408, 429, 5xx,
        connection resets) with our delays and deadline, and at most ``max_retries`` retries (a fresh
        count for every call: build one per request)."""
        import itertools

        from google.cloud.storage.retry import DEFAULT_RETRY

        retries = itertools.count(1)
        transient = DEFAULT_RETRY._predicate

        def predicate(exc: Exception) -> bool:
            return transient(exc) and next(retries) <= self.max_retries

        return DEFAULT_RETRY.with_predicate(predicate) \
            .with_delay(initial=self.initial_backoff, maximum=self.max_backoff, multiplier=2) \
            .with_timeout(self.total_timeout)
