"""From uploaded objects to a finished Druid task: build the task, submit it, wait, verify rows.

Used by ``ml-analytics push`` (upload, then hand off) and ``ml-analytics ingest`` (objects
already in storage). With no Druid configured the task JSON is written and reported
NOT_SUBMITTED, which is how the README's main job runs on a machine without Druid.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import DRUID_SECTION, Config
from ..errors import ConfigError, UsageError
from ..retry import RetryPolicy
from .overlord import DruidError, OverlordClient, TaskStatus
from .spec import datasource, point_spec, validate_spec

DEFAULT_TIMEOUT = 3600.0
AZURE_SOURCES = ("azureStorage", "azure")


@dataclass
class DruidOutcome:
    task: str | None
    status: str  # SUCCESS | FAILED | TIMEOUT | NOT_SUBMITTED | SUBMITTED
    errorMsg: str | None = None  # noqa: N815 (Druid's field name)
    rows: int | None = None
    expected_rows: int | None = None
    spec_path: str | None = None
    datasource: str | None = None
    input_source: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("SUCCESS", "NOT_SUBMITTED", "SUBMITTED")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DruidSettings:
    batch_url: str | None
    username: str | None
    password: str | None
    sql_url: str | None
    timeout: float
    ingest_from: str | None
    azure_input_source: str
    verify_tls: bool

    @classmethod
    def from_config(cls, config: Config) -> "DruidSettings":
        get = lambda key: config.get(DRUID_SECTION, key)  # noqa: E731
        timeout = get("timeout")
        try:
            timeout_s = float(timeout) if timeout else DEFAULT_TIMEOUT
        except ValueError:
            raise ConfigError(f"expected seconds, got {timeout!r}", path=config.path, section=DRUID_SECTION,
                              key="timeout") from None
        azure = get("azure_input_source") or "azureStorage"
        if azure not in AZURE_SOURCES:
            raise ConfigError(f"must be azureStorage (Druid >= 30) or azure (older), got {azure!r}",
                              path=config.path, section=DRUID_SECTION, key="azure_input_source")
        if bool(get("username")) != bool(get("password")):
            raise ConfigError("set both username and password, or neither", path=config.path, section=DRUID_SECTION,
                              key="username" if not get("username") else "password")
        url_query = get("urlquery")
        sql_url = get("sql_url") or (url_query.rstrip("/") + "/sql" if url_query else None)
        verify = (get("verify_tls") or "true").lower() not in ("false", "0", "no", "off")
        batch_url = get("batch_url")
        if batch_url and not batch_url.startswith(("http://", "https://")):
            raise ConfigError(f"must be an http(s) URL, got {batch_url!r}", path=config.path, section=DRUID_SECTION,
                              key="batch_url")
        return cls(batch_url, get("username"), get("password"), sql_url, timeout_s, get("ingest_from"), azure, verify)

    def client(self, retry: RetryPolicy) -> OverlordClient | None:
        if not self.batch_url:
            return None
        return OverlordClient(self.batch_url, username=self.username, password=self.password, sql_url=self.sql_url,
                              retry=retry, verify_tls=self.verify_tls)


def count_ndjson_rows(paths: Sequence[str | os.PathLike]) -> int:
    """Non-empty lines across newline-delimited JSON files (what Druid's json inputFormat reads)."""
    total = 0
    for p in paths:
        with open(p, "rb") as fh:
            last = b"\n"
            for block in iter(lambda: fh.read(1 << 20), b""):
                total += block.count(b"\n")
                last = block[-1:]
            if last != b"\n":
                total += 1
    return total


def build_task(spec: dict, provider, keys: Sequence[str], *, append: bool | None, azure_input_source: str,
               input_source: str = "native", label: str = "spec") -> dict:
    if input_source == "http":
        sign = getattr(provider, "sign_url", None)
        if sign is None:
            raise UsageError(f"{provider.section} cannot make pre-signed URLs for Druid's http input source")
        source = {"type": "http", "uris": [sign(k) for k in keys]}
    else:
        source = provider.druid_input_source(keys, azure_input_source=azure_input_source)
    task = point_spec(spec, source, append=append)
    validate_spec(task, label)
    return task


def write_task(task: dict, spec_out: str | os.PathLike | None) -> str:
    path = Path(spec_out) if spec_out else Path("druid-tasks") / f"{datasource(task)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # may hold pre-signed URLs
    with os.fdopen(fd, "w") as fh:
        json.dump(task, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    return str(path)


def hand_off(task: dict, settings: DruidSettings, retry: RetryPolicy, *, spec_out=None, submit: bool = True,
             wait: bool = True, timeout: float | None = None, verify_rows: bool = True, expected_rows: int | None = None,
             on_update: Callable[[TaskStatus], None] | None = None) -> DruidOutcome:
    outcome = DruidOutcome(None, "NOT_SUBMITTED", spec_path=write_task(task, spec_out), datasource=datasource(task),
                           expected_rows=expected_rows,
                           input_source=task["spec"]["ioConfig"]["inputSource"].get("type"))
    client = settings.client(retry) if submit else None
    if client is None:
        return outcome
    outcome.task = client.submit(task)
    if not wait:
        outcome.status = "SUBMITTED"
        return outcome
    budget = timeout if timeout is not None else settings.timeout
    started = time.monotonic()
    final = client.wait(outcome.task, budget, on_update=on_update)
    outcome.status, outcome.errorMsg = final.status, final.error_msg
    if final.status == "SUCCESS" and verify_rows:
        remaining = max(5.0, budget - (time.monotonic() - started))
        outcome.rows = _verified_rows(client, outcome.datasource, expected_rows, min(remaining, 120.0))
        if outcome.rows == 0:
            outcome.status = "FAILED"
            outcome.errorMsg = "Druid reported SUCCESS but the datasource has 0 rows (wrong files or all rows filtered)"
    return outcome


def _verified_rows(client: OverlordClient, ds: str, expected: int | None, budget: float) -> int | None:
    """Row count through SQL, polled until segments are served (count stops being short) or the budget ends."""
    deadline = time.monotonic() + budget
    delay = 0.5
    while True:
        try:
            rows = client.count_rows(ds)
        except DruidError:
            return None
        if (expected is None and rows > 0) or (expected is not None and rows >= expected) \
                or time.monotonic() >= deadline:
            return rows
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
