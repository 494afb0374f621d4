"""From uploaded objects to a finished Druid task: build the task, submit it, wait, verify rows.

Used by ``ml-analytics push`` (upload, then hand off) and ``ml-analytics ingest`` (objects
already in storage). With no Druid configured the task JSON is written and reported
NOT_SUBMITTED, which is how the README's main job runs on a machine without Druid.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import DRUID_SECTION, Config, url_problem
from ..errors import ConfigError
from ..retry import RetryPolicy
from ..source import replace_file
from .overlord import (DruidError, OverlordClient, TaskStatus, split_userinfo, summarize_task_error,
                       with_task_id)
from .sources import AZURE_SOURCES, input_source as make_input_source
from .spec import datasource, point_spec, validate_spec

DEFAULT_TIMEOUT = 3600.0
MAX_TIMEOUT = 7 * 24 * 3600.0  # a week: anything longer is a typo, not a wait
# After SUCCESS, how long at most to wait for the task's segments to be served before counting the
# datasource (within the task's --timeout); the wait ends as soon as the count reaches what the task added.
# Druid loads new segments on historicals after the task ends: seconds when idle, minutes when busy.
ROWS_BUDGET = 180.0


def seconds(value: str | float, what: str, *, maximum: float = MAX_TIMEOUT) -> float:
    """A finite, positive number of seconds up to ``maximum``; ValueError (naming ``what``) otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected seconds, got {value!r}") from None
    if math.isnan(number) or math.isinf(number) or number <= 0 or number > maximum:
        raise ValueError(f"{what}: expected seconds > 0 and at most {maximum:g}, got {value!r}")
    return number


def sql_url_from_query_url(url_query: str) -> str:
    """``http://h:8082/druid/v2?pretty`` -> ``http://h:8082/druid/v2/sql`` (query string and fragment dropped)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url_query.strip())
    path = parts.path.rstrip("/")
    if not path.endswith("/sql"):
        path += "/sql"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass
class DruidOutcome:
    task: str | None
    status: str  # SUCCESS | FAILED | TIMEOUT | INCOMPLETE | ERROR | INTERRUPTED | NOT_SUBMITTED | SUBMITTED
    errorMsg: str | None = None  # noqa: N815 (Druid's field name)
    rows: int | None = None
    rows_error: str | None = None  # why rows could not be counted (rows is then None)
    expected_rows: int | None = None
    spec_path: str | None = None
    datasource: str | None = None
    input_source: str | None = None
    # this task's own counts from its report: processed, processedWithError, thrownAway, unparseable
    ingested: dict | None = None

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

        def fail(key: str, message: str) -> ConfigError:
            return ConfigError(message, path=config.path, section=DRUID_SECTION, key=key)

        timeout = get("timeout")
        try:
            timeout_s = seconds(timeout, "timeout") if timeout else DEFAULT_TIMEOUT
        except ValueError as e:
            raise fail("timeout", str(e).split(": ", 1)[1]) from None
        azure = get("azure_input_source") or "azureStorage"
        if azure not in AZURE_SOURCES:
            raise fail("azure_input_source", f"must be azureStorage (Druid >= 30) or azure (older), got {azure!r}")
        batch_url = get("batch_url")
        username, password = get("username"), get("password")
        for key in ("batch_url", "sql_url", "urlquery"):
            value = get(key)
            why = url_problem(split_userinfo(value)[0]) if value else None
            if why:
                raise fail(key, f"{why}; not used")
        if batch_url:
            plain, url_user, url_password = split_userinfo(batch_url)
            # http://user:pw@host/...: Basic auth, never printed and never kept in the URL
            batch_url, username, password = plain, username or url_user, password or url_password
        if bool(username) != bool(password):
            raise fail("username" if not username else "password", "set both username and password, or neither")
        url_query = get("urlquery")
        sql_url = get("sql_url") or (sql_url_from_query_url(url_query) if url_query else None)
        verify = (get("verify_tls") or "true").lower() not in ("false", "0", "no", "off")
        return cls(batch_url, username, password, sql_url, timeout_s, get("ingest_from"), azure, verify)

    @property
    def secrets(self) -> set[str]:
        return {self.password} if self.password else set()

    def __repr__(self) -> str:
        from ..errors import redact_userinfo

        return (f"DruidSettings(batch_url={redact_userinfo(repr(self.batch_url))}, username={self.username!r}, "
                f"password={'***' if self.password else None}, sql_url={redact_userinfo(repr(self.sql_url))}, "
                f"timeout={self.timeout!r})")

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


def azure_type_for(spec: dict, configured: str) -> str:
    """The spec's own Azure input source type (``azure`` stays ``azure``); the configured one otherwise."""
    current = (((spec.get("spec") or {}).get("ioConfig") or {}).get("inputSource") or {})
    kind = current.get("type") if isinstance(current, dict) else None
    return kind if kind in AZURE_SOURCES else configured


def build_task(spec: dict, provider, keys: Sequence[str], *, append: bool | None, azure_input_source: str,
               input_source: str = "native", label: str = "spec") -> dict:
    """``spec`` pointed at ``keys`` of ``provider`` (input source from :mod:`.sources`), validated."""
    source = make_input_source(provider, keys, mode=input_source,
                               azure_input_source=azure_type_for(spec, azure_input_source))
    task = point_spec(spec, source, append=append)
    validate_spec(task, label)
    return task


def write_task(task: dict, spec_out: str | os.PathLike | None) -> str:
    """Write the task JSON (mode 600: it may hold pre-signed URLs) through a temporary file created
    exclusively in the target folder (a link planted there is never followed), then renamed."""
    path = Path(spec_out) if spec_out else Path("druid-tasks") / f"{datasource(task)}.json"
    replace_file(path, json.dumps(task, indent=2) + "\n")  # mode 600
    return str(path)


def check_local_files(task: dict) -> None:
    """Druid's ``local`` input source skips a file that does not exist (or is empty) without a word and
    still says SUCCESS: every listed file must be a readable regular file before the task is sent (this
    machine is Druid's for a LOCAL store). Raises a SpecError naming the missing ones."""
    from .spec import SpecError

    source = ((task.get("spec") or {}).get("ioConfig") or {}).get("inputSource") or {}
    if source.get("type") != "local":
        return
    missing = [f for f in source.get("files") or () if not (os.path.isfile(f) and os.access(f, os.R_OK))]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise SpecError(f"the local input source names a file that does not exist or cannot be read: "
                        f"{missing[0]}{more}; Druid would skip it silently, so the task is not sent")


def hand_off(task: dict, settings: DruidSettings, retry: RetryPolicy, *, spec_out=None, submit: bool = True,
             wait: bool = True, timeout: float | None = None, verify_rows: bool = True, expected_rows: int | None = None,
             on_update: Callable[[TaskStatus], None] | None = None) -> DruidOutcome:
    check_local_files(task)
    outcome = DruidOutcome(None, "NOT_SUBMITTED", spec_path=write_task(task, spec_out), datasource=datasource(task),
                           expected_rows=expected_rows,
                           input_source=task["spec"]["ioConfig"]["inputSource"].get("type"))
    client = settings.client(retry) if submit else None
    if client is None:
        return outcome
    prior = None
    if wait and verify_rows:
        try:  # what the datasource holds before: appending adds to it
            prior = client.count_rows(outcome.datasource)
        except DruidError:
            prior = None
        except KeyboardInterrupt:
            outcome.status, outcome.errorMsg = "INTERRUPTED", "interrupted before the task was submitted"
            return outcome
    task = with_task_id(task)
    try:
        outcome.task = client.submit(task)
    except KeyboardInterrupt:  # Ctrl-C while submitting: the task may or may not be in; say which it would be
        outcome.task, outcome.status = task["id"], "INTERRUPTED"
        outcome.errorMsg = (f"interrupted while submitting; task {task['id']} may have been accepted "
                            f"(ml-analytics druid status {task['id']})")
        return outcome
    if not wait:
        outcome.status = "SUBMITTED"
        return outcome
    budget = timeout if timeout is not None else settings.timeout
    started = time.monotonic()
    try:
        final = client.wait(outcome.task, budget, on_update=on_update)
    except KeyboardInterrupt:  # Ctrl-C while waiting: the task goes on in Druid; say so, and which it is
        outcome.status = "INTERRUPTED"
        outcome.errorMsg = (f"interrupted while waiting; task {outcome.task} is still running in Druid "
                            f"(ml-analytics druid status {outcome.task})")
        return outcome
    outcome.status, outcome.errorMsg = final.status, final.error_msg
    if final.status == "FAILED":  # Druid's errorMsg is a stack trace: its message and root cause, one line
        outcome.errorMsg = summarize_task_error(client.failure_detail(outcome.task) or final.error_msg)
    if final.status == "SUCCESS" and verify_rows:
        try:
            _judge(outcome, client, task, expected_rows, prior, budget - (time.monotonic() - started))
        except KeyboardInterrupt:  # Ctrl-C while the rows are checked (up to ROWS_BUDGET): stop, and say how far
            outcome.status = "INTERRUPTED"
            outcome.errorMsg = (f"interrupted while checking the rows; task {outcome.task} ended SUCCESS in Druid "
                                f"but what it ingested was not verified (ml-analytics druid status {outcome.task})")
    elif final.status == "SUCCESS":
        outcome.rows_error = "not counted (--no-verify-rows)"
    return outcome


def _judge(outcome: DruidOutcome, client: OverlordClient, task: dict, expected: int | None, prior: int | None,
           budget_left: float) -> None:
    """SUCCESS only when this task's own report says it ingested every row it was handed: zero rows,
    fewer than the files (or the manifest) hold, or rows Druid left out (unparseable, thrown away) make it
    INCOMPLETE with the numbers. The datasource's row count (SQL) is an extra figure, not the verdict: it
    cannot tell what this task added from what was there. Without a report (older Druid, a cluster that
    keeps none) the count is all there is, and ``rows_error`` says so."""
    appending = bool(task["spec"]["ioConfig"].get("appendToExisting"))
    stats, why = client.row_stats(outcome.task, patience=min(6.0, max(0.0, budget_left)))
    outcome.ingested = stats
    processed = stats.get("processed") if stats else None
    target = None
    if processed is not None:
        target = processed + (prior or 0) if appending else processed
    elif expected is not None:
        target = expected + (prior or 0) if appending else expected
    # A task that ingested nothing adds nothing to wait for; otherwise wait (bounded) for its segments.
    wait = 0.0 if processed == 0 else min(max(5.0, budget_left), ROWS_BUDGET)
    outcome.rows, count_error = _verified_rows(client, outcome.datasource, target, wait)
    if stats is None:
        outcome.rows_error = f"judged by the datasource's row count: {why}" + (f"; {count_error}" if count_error
                                                                                else "")
        if outcome.rows == 0:
            outcome.status = "INCOMPLETE"
            outcome.errorMsg = "Druid reported SUCCESS but the datasource has 0 rows (wrong files or all rows filtered)"
        elif outcome.rows is not None and expected is not None and not appending and outcome.rows < expected:
            outcome.status = "INCOMPLETE"
            outcome.errorMsg = f"the datasource holds {outcome.rows} rows of the {expected} in the files"
        return
    outcome.rows_error = count_error
    dropped = {k: stats.get(k) for k in ("unparseable", "thrownAway", "processedWithError") if stats.get(k)}
    if processed == 0:
        outcome.status = "INCOMPLETE"
        outcome.errorMsg = ("Druid reported SUCCESS but this task ingested 0 rows" +
                            (f" of the {expected} handed over" if expected else "") +
                            (f" ({', '.join(f'{n} {k}' for k, n in dropped.items())})" if dropped else "") +
                            "; the datasource's other rows are not this task's")
    elif dropped:  # Druid drops rows it cannot parse and still says SUCCESS
        outcome.status = "INCOMPLETE"
        outcome.errorMsg = ("Druid reported SUCCESS but left rows out: "
                            + ", ".join(f"{n} {k}" for k, n in dropped.items()) + f" of {processed + sum(dropped.values())}"
                            + " (see the task's report)")
    elif expected is not None and processed < expected:
        outcome.status = "INCOMPLETE"
        outcome.errorMsg = f"Druid ingested {processed} of the {expected} rows handed over"


def _verified_rows(client: OverlordClient, ds: str, target: int | None, budget: float) -> tuple[int | None, str | None]:
    """(rows, None) through SQL, polled until the count is ``target`` (segments handed off); (rows, why)
    when the budget ended first; (None, why) when Druid cannot be asked."""
    started = time.monotonic()
    deadline = started + budget
    delay = 0.5
    while True:
        try:  # connection trouble is retried inside; what is left (wrong URL, 401, bad SQL) will not heal
            rows = client.count_rows(ds)
        except DruidError as e:
            return None, f"rows not counted: {e}"
        if (target is None and rows > 0) or rows == target:
            return rows, None
        if time.monotonic() >= deadline:
            if not budget:  # nothing was waited for: the count is what it is
                return rows, None
            want = f"not the {target} expected" if target is not None else "none yet"
            return rows, (f"the datasource answered {rows} rows, {want}, after waiting "
                          f"{time.monotonic() - started:.0f} s for the task's segments to be served: Druid may "
                          f"still be loading them (rollup, or rows of other intervals kept by a replace, also "
                          f"make the count differ)")
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 5.0)
