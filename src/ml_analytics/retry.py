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
    max_retries: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 8.0
    total_timeout: float = 180.0
    connect_timeout: float = 10.0
    request_timeout: float = 300.0

    @classmethod
    def from_config(cls, config) -> "RetryPolicy":
        from .config import COMMON_SECTION
        from .errors import ConfigError

        values = {}
        for key, field, kind in (("max_retries", "max_retries", "int"), ("retry_timeout", "total_timeout", "float"),
                                 ("connect_timeout", "connect_timeout", "float"),
                                 ("request_timeout", "request_timeout", "float")):
            raw = config.get(COMMON_SECTION, key)
            if raw is None:
                continue
            try:
                value = int(raw) if kind == "int" else float(raw)
            except ValueError:
                raise ConfigError(f"expected a number, got {raw!r}", path=config.path, section=COMMON_SECTION,
                                  key=key) from None
            if value < 0:
                raise ConfigError("must not be negative", path=config.path, section=COMMON_SECTION, key=key)
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
    def azure_kwargs(self) -> dict:
        return {"retry_total": self.max_retries, "retry_connect": self.max_retries, "retry_read": self.max_retries,
                "retry_status": self.max_retries, "retry_backoff_factor": self.initial_backoff,
                "retry_backoff_max": self.max_backoff, "connection_timeout": self.connect_timeout,
                "read_timeout": self.request_timeout}

    # -- google-api-core ---------------------------------------------------------------------------
    def google_retry(self):
        from google.api_core import exceptions as gexc
        from google.api_core.retry import Retry, if_exception_type

        try:
            import requests

            connection_errors = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                                 requests.exceptions.Timeout)
        except ImportError:  # pragma: no cover
            connection_errors = ()
        predicate = if_exception_type(gexc.TooManyRequests, gexc.InternalServerError, gexc.BadGateway,
                                      gexc.ServiceUnavailable, gexc.GatewayTimeout, ConnectionError, *connection_errors)
        return Retry(predicate=predicate, initial=self.initial_backoff, maximum=self.max_backoff, multiplier=2,
                     timeout=self.total_timeout)
