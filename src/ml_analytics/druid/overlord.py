"""A client of Druid's Overlord task API: submit, watch, shut down, and count rows through SQL.

Follows Druid's documented API: ``POST /druid/indexer/v1/task`` answers ``{"task": id}``;
``GET .../task/{id}/status`` answers ``status.statusCode`` of RUNNING, SUCCESS or FAILED, with
``runnerStatusCode`` (WAITING, PENDING, RUNNING) telling whether a worker has it. A task stuck
PENDING stays RUNNING forever, so waiting has its own deadline, after which the task is shut
down. 503 with an empty body (this Overlord is not the leader) and connection errors are
retried; an unknown task id is 404 on current Druid and 400 on older ones, treated alike.

Checked against a real Druid 33.0.0 (tests/druid): a finished task keeps ``runnerStatusCode``
WAITING; SQL on a datasource no segment of which is served yet answers 400 "Object ... not found"
(counted as 0 rows while waiting for handoff); a refused task answers 400 with Druid's
``druidException`` shape. A URL may carry ``user:password@``: it becomes Basic auth and never
appears in a message.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..errors import MLAnalyticsError, NetworkError, StorageError, one_line, redact
from ..httpclient import HttpClient, RequestFailed
from ..retry import RetryPolicy

log = logging.getLogger(__name__)
TASK_PATH = "/druid/indexer/v1/task"
MAX_ANSWER = 16 * 1024 * 1024  # a status, report or SQL answer larger than this is not one
REDIRECTS = 3  # a non-leader Overlord redirects (307) to the leader


class DruidError(MLAnalyticsError):
    """Druid refused a request or could not be reached."""


class DruidAuthError(DruidError):
    exit_code = 2


class TaskNotFound(DruidError):
    pass


@dataclass
class TaskStatus:
    task: str
    status: str  # RUNNING | SUCCESS | FAILED
    runner_status: str | None = None
    error_msg: str | None = None
    duration_ms: int | None = None
    raw: dict = field(default_factory=dict)

    @classmethod
    def from_response(cls, doc) -> "TaskStatus":
        """A status answer (``{"task": id, "status": {"statusCode": ..., ...}}``); anything else, even valid
        JSON, is a one-line DruidError."""
        st = doc.get("status") if isinstance(doc, dict) else None
        code = (st.get("statusCode") or st.get("status")) if isinstance(st, dict) else None
        if not isinstance(code, str) or not code:
            raise DruidError(f"DRUID: a task status answer without a status code: {one_line(json.dumps(doc), 200)}")
        duration = st.get("duration")
        error = st.get("errorMsg")
        return cls(task=str(doc.get("task") or st.get("id") or ""), status=code,
                   runner_status=st.get("runnerStatusCode") if isinstance(st.get("runnerStatusCode"), str) else None,
                   error_msg=error if isinstance(error, str) else None,
                   duration_ms=duration if isinstance(duration, int) else None, raw=doc)


def druid_error_message(body: bytes) -> str:
    """The readable part of a Druid error body (legacy {"error"} or druidException shape)."""
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return one_line(text, 500) or "(empty response)"
    if isinstance(doc, dict):
        for key in ("errorMessage", "error"):
            if isinstance(doc.get(key), str) and doc[key] and doc[key] != "druidException":
                return one_line(doc[key], 500)
    return one_line(text, 500)


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``http://u:p@h/x`` -> (``http://h/x``, u, p); a URL without userinfo comes back unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None, None
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=hostport)), unquote(user) or None, unquote(password) or None


def summarize_task_error(text: str | None) -> str | None:
    """Druid's errorMsg of a failed task is a Java stack trace (Druid 33): keep the exception's message
    and its deepest cause, on one line."""
    if not text:
        return text
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    head = lines[0]
    causes = [ln[len("Caused by:"):].strip() for ln in lines if ln.startswith("Caused by:")]
    for noise in ("java.lang.RuntimeException: ", "java.lang.Exception: ", "java.io.IOException: "):
        if head.startswith(noise):
            head = head[len(noise):]
            break
    if causes and causes[-1] not in head:
        head += f" (caused by {_short(causes[-1])})"
    return one_line(head, 600)


def _short(cause: str) -> str:
    """``com.amazonaws...AmazonS3Exception: msg`` -> ``AmazonS3Exception: msg``."""
    name, _, msg = cause.partition(": ")
    return f"{name.rsplit('.', 1)[-1]}: {msg}" if msg else name.rsplit(".", 1)[-1]


def with_task_id(task: dict) -> dict:
    """``task`` with an id of its own (Druid's shape, TYPE_DATASOURCE_..., marked as ours) unless it has one."""
    import uuid

    if task.get("id"):
        return task
    datasource = ((task.get("spec") or {}).get("dataSchema") or {}).get("dataSource") or "task"
    return {"id": f"{task.get('type', 'task')}_{datasource}_ml-analytics_{uuid.uuid4().hex}", **task}


class OverlordClient:
    def __init__(self, batch_url: str, *, username: str | None = None, password: str | None = None,
                 sql_url: str | None = None, retry: RetryPolicy | None = None, verify_tls: bool = True):
        batch_url, url_user, url_password = split_userinfo(batch_url)
        if sql_url:
            sql_url, sql_user, sql_password = split_userinfo(sql_url)
            url_user, url_password = url_user or sql_user, url_password or sql_password
        username, password = username or url_user, password or url_password
        self.batch_url = batch_url.rstrip("/")
        if not self.batch_url.endswith(TASK_PATH):
            base = self.batch_url
            self.batch_url = base + TASK_PATH
        self.base = self.batch_url[: -len(TASK_PATH)]
        self.sql_url = sql_url or f"{self.base}/druid/v2/sql"
        self.retry = retry or RetryPolicy()
        self._secret_password = password
        self._auth = ("Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()) if username else None
        if not verify_tls:
            log.warning("DRUID: TLS certificate verification is OFF (verify_tls = false)")
        # Basic auth goes only to the configured Overlord and SQL endpoints, never where a redirect points.
        self.http = HttpClient(self.retry, verify_tls=verify_tls, max_body=MAX_ANSWER,
                               auth={"Authorization": self._auth} if self._auth else None,
                               auth_origins=(self.batch_url, self.sql_url))

    @property
    def secrets(self) -> set[str]:
        return {s for s in (self._secret_password, self._auth) if s}

    # -- HTTP -----------------------------------------------------------------------------------------
    def _request(self, method: str, url: str, body: dict | None = None, *, retry: bool = True) -> tuple[int, bytes]:
        """One call through the shared HTTP client (its retry loop: 5xx, 429 and no answer are retried;
        redirects to the leader followed, POST bodies re-sent). Returns the final status and body."""
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            reply = self.http.request(method, url, headers=headers, body=data, attempts=None if retry else 1,
                                      redirects=REDIRECTS, accept=lambda r: not RequestFailed(r).retryable)
        except RequestFailed as e:
            if e.reply is not None:  # still failing after the retries: the caller says what it means
                return e.reply.status, e.reply.body
            raise NetworkError(f"DRUID: cannot reach {self.base} ({one_line(e.cause, 200)})") from None
        return reply.status, reply.body

    def _check_auth(self, status: int, payload: bytes) -> None:
        if status == 401:
            raise DruidAuthError(f"DRUID: {self.base} wants credentials (401): set [DRUID] username and password")
        if status == 403:
            raise DruidAuthError(f"DRUID: user is not allowed to do this (403): {druid_error_message(payload)}")

    def _json(self, payload: bytes, what: str):
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            raise DruidError(f"DRUID: {what} answered with something that is not JSON: "
                             f"{one_line(payload.decode('utf-8', 'replace'), 200)}") from None

    # -- API --------------------------------------------------------------------------------------------
    def submit(self, task: dict) -> str:
        """Submit ``task``; returns its id. The task gets an id of its own before it is sent, so a
        submission retried after a lost answer cannot start the same ingestion twice (appending the
        rows twice): Druid refuses the second as "already exists", which means the first got in."""
        task = with_task_id(task)
        status, payload = self._request("POST", self.batch_url, task)
        self._check_auth(status, payload)
        if status in (400, 409) and b"already exists" in payload and "_ml-analytics_" in task["id"]:
            return task["id"]
        if status != 200:
            if status == 503:
                raise DruidError(f"DRUID: {self.base} has no leader Overlord (503 after retries)")
            raise DruidError(f"DRUID refused the task ({status}): {druid_error_message(payload)}")
        answer = self._json(payload, "task submission")
        task_id = answer.get("task") if isinstance(answer, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise DruidError(f"DRUID: task submission answered without a task id: {one_line(str(answer), 200)}")
        return task_id

    def status(self, task_id: str) -> TaskStatus:
        status, payload = self._request("GET", f"{self.batch_url}/{quote(task_id, safe='')}/status")
        self._check_auth(status, payload)
        if status == 404 or (status == 400 and b"Cannot find" in payload):
            raise TaskNotFound(f"DRUID: no task with id {task_id}")
        if status != 200:
            raise DruidError(f"DRUID: status of {task_id} failed ({status}): {druid_error_message(payload)}")
        return TaskStatus.from_response(self._json(payload, "task status"))

    def failure_detail(self, task_id: str) -> str | None:
        """The full error of a failed task from its report (stack trace with causes), if Druid has one."""
        payload = self._report(task_id)
        return (payload or {}).get("errorMsg") or None

    def row_stats(self, task_id: str, *, patience: float = 0.0) -> tuple[dict | None, str | None]:
        """This task's own row counts from its completion report (``buildSegments``: processed,
        processedWithError, thrownAway, unparseable), or (None, why they are not available). An ``index``
        task's report has them flat, an ``index_parallel`` supervisor's under ``totals``. A report not
        there yet (404 or empty: it is pushed when the task ends) is asked for again for ``patience``
        seconds; a cluster whose task logs keep no reports never has one."""
        deadline = time.monotonic() + patience
        delay = 0.5
        while True:
            payload, why = self._report_or_why(task_id)
            if payload is not None:
                stats = payload.get("rowStats")
                stats = stats.get("totals", stats) if isinstance(stats, dict) else None
                stats = stats.get("buildSegments") if isinstance(stats, dict) else None
                if isinstance(stats, dict) and isinstance(stats.get("processed"), int):
                    return {k: stats[k] for k in ("processed", "processedWithError", "thrownAway", "unparseable")
                            if isinstance(stats.get(k), int)}, None
                return None, "the task's report has no row counts (rowStats.buildSegments)"
            if time.monotonic() + delay > deadline:
                return None, why
            time.sleep(delay)
            delay = min(delay * 2, 4.0)

    def _report(self, task_id: str) -> dict | None:
        return self._report_or_why(task_id)[0]

    def _report_or_why(self, task_id: str) -> tuple[dict | None, str]:
        try:
            status, payload = self._request("GET", f"{self.batch_url}/{quote(task_id, safe='')}/reports",
                                            retry=False)
        except MLAnalyticsError as e:
            return None, f"the task's report could not be read ({one_line(e, 200)})"
        if status == 404 or (status == 200 and not payload.strip()):
            return None, "Druid keeps no report of this task (404: task logs without reports?)"
        if status != 200:
            return None, f"the task's report could not be read ({status}: {druid_error_message(payload)})"
        try:
            doc = json.loads(payload)["ingestionStatsAndErrors"]["payload"]
        except (ValueError, KeyError, TypeError):
            return None, "the task's report is not in Druid's ingestionStatsAndErrors shape"
        if not isinstance(doc, dict):
            return None, "the task's report is not in Druid's ingestionStatsAndErrors shape"
        return doc, ""

    def shutdown(self, task_id: str) -> None:
        status, payload = self._request("POST", f"{self.batch_url}/{quote(task_id, safe='')}/shutdown")
        self._check_auth(status, payload)
        if status != 200:
            raise DruidError(f"DRUID: shutdown of {task_id} failed ({status}): {druid_error_message(payload)}")

    def wait(self, task_id: str, timeout: float, on_update: Callable[[TaskStatus], None] | None = None,
             poll_initial: float = 0.5, poll_max: float = 10.0) -> TaskStatus:
        """Poll until SUCCESS or FAILED; past ``timeout`` seconds shut the task down and return TIMEOUT."""
        deadline = time.monotonic() + timeout
        delay = poll_initial
        last = None
        while True:
            st = self.status(task_id)
            if on_update and (last is None or (st.status, st.runner_status) != (last.status, last.runner_status)):
                on_update(st)
            last = st
            if st.status in ("SUCCESS", "FAILED"):
                return st
            if time.monotonic() >= deadline:
                try:
                    self.shutdown(task_id)
                except DruidError as e:
                    log.warning("%s", e)
                return TaskStatus(task_id, "TIMEOUT", st.runner_status,
                                  f"still {st.status}/{st.runner_status} after {timeout:g} s; shut down", raw=st.raw)
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(poll_max, delay * 1.5)

    def count_rows(self, datasource: str) -> int:
        query = 'SELECT COUNT(*) AS cnt FROM "' + datasource.replace('"', '""') + '"'
        status, payload = self._request("POST", self.sql_url, {"query": query})
        self._check_auth(status, payload)
        if status == 400 and b"not found" in payload and datasource.encode() in payload:
            return 0  # no segment of it is served (yet): Druid 33 says "Object '<ds>' not found"
        if status != 200:
            raise DruidError(f"DRUID: row count query failed ({status}): {druid_error_message(payload)}")
        rows = self._json(payload, "SQL")
        try:
            return int(rows[0]["cnt"]) if rows else 0
        except (KeyError, TypeError, ValueError, IndexError):
            raise DruidError(f"DRUID: unexpected SQL answer {one_line(str(rows), 200)}") from None

    def ping(self) -> str:
        """One look at the Overlord (``check``: a probe says what it finds, it does not wait out retries)."""
        status, payload = self._request("GET", f"{self.base}/druid/indexer/v1/tasks?state=running", retry=False)
        self._check_auth(status, payload)
        if status != 200:
            raise DruidError(f"DRUID: {self.base} answered {status}: {druid_error_message(payload)}")
        return f"Overlord {self.base} reachable"

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)


__all__ = ["OverlordClient", "TaskStatus", "DruidError", "DruidAuthError", "TaskNotFound", "StorageError"]
