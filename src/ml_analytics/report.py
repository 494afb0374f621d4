"""What a batch reports, counted as results arrive: nothing per file is held.

:class:`Tally` keeps per-provider counts and the first failures, so a batch of hundreds of
thousands of files is summarised in constant memory. The ``--json`` documents are
:mod:`ml_analytics.schema`'s.
"""

from __future__ import annotations

import threading

STATUSES = ("uploaded", "skipped", "failed", "planned")
MAX_FAILURES_SHOWN = 20


class Tally:
    def __init__(self) -> None:
        self.by_provider: dict[str, dict] = {}
        self.failures: list = []
        self.failed = 0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, results) -> "Tally":
        tally = cls()
        for r in results:
            tally.add(r)
        return tally

    def add(self, result) -> None:
        with self._lock:
            row = self.by_provider.setdefault(result.provider, {**{s: 0 for s in STATUSES}, "bytes": 0, "where": None})
            row[result.status] += 1
            if result.status in ("uploaded", "planned"):
                row["bytes"] += result.bytes
            if result.uri and row["where"] is None:
                uri = result.uri
                row["where"] = uri[: len(uri) - len(result.key)] if uri.endswith(result.key) else uri
            if result.status == "failed":
                self.failed += 1
                if len(self.failures) < MAX_FAILURES_SHOWN:
                    self.failures.append(result)

    def count(self, status: str) -> int:
        return sum(row[status] for row in self.by_provider.values())

    def summary(self) -> dict:
        return {"uploaded": self.count("uploaded"), "skipped": self.count("skipped"), "failed": self.count("failed"),
                "bytes_uploaded": sum(row["bytes"] for row in self.by_provider.values() if row["uploaded"])}

    @property
    def files(self) -> int:
        return max((sum(row[s] for s in STATUSES) for row in self.by_provider.values()), default=0)
