"""A stand-in for Druid's Overlord (and the SQL endpoint), following shared/reference/druid-overlord-api.md.

It is a real HTTP server on loopback. Submitted tasks go RUNNING with runnerStatusCode PENDING,
then RUNNING, then do what Druid would do with the inputSource: resolve every URI against the
real local servers (SeaweedFS for s3, Azurite for azure/azureStorage, fake-gcs-server for google,
files for local, plain GET for http), read the objects, count newline-delimited JSON rows, and
FAIL the task if an object is missing. A test therefore passes only if the spec really points at
what was uploaded.

Confirmed against a real Apache Druid 33.0.0 with the S3 and Azure extensions 29.0.0 (tests/druid,
the same behaviours proven there), and changed here to match:

* a finished task keeps ``runnerStatusCode`` WAITING (not NONE); a shut-down task is FAILED at once
  with errorMsg "Shutdown request from user" while the runner still says RUNNING;
* an unknown task id: 404 with a plain-text body ``Cannot find any task with id: [<id>]`` for status,
  shutdown and reports; percent-encoded ids (``%3A``) are decoded by Druid;
* a failed read: errorMsg is a Java stack trace starting ``java.lang.RuntimeException: Error occurred
  while trying to read uri: <uri>``; the task's ``/reports`` hold the full trace with its causes
  (e.g. ``NoSuchKey``) and ``rowStats.buildSegments``;
* a line that does not parse is dropped (``unparseable`` in rowStats) and the task still ends SUCCESS;
* a finished task's ``/reports``: ``ingestionStatsAndErrors`` with ``rowStats`` flat per phase
  (``determinePartitions``, ``buildSegments``: processed, processedBytes, processedWithError, thrownAway,
  unparseable) for an index_parallel task run sequentially, plus a ``taskContext`` report;
* a ``local`` input source skips a file that does not exist and still succeeds (0 rows processed);
* SQL on a datasource no segment of which is served: 400, ``{"error": "druidException",
  "errorCode": "invalidInput", ..., "errorMessage": "Object '<ds>' not found ..."}``;
* an ``s3`` inputSource's ``endpointConfig`` / ``clientConfig`` are used only when ``properties`` is
  present (otherwise Druid's own S3 client and endpoint read the URIs);
* a refused task: 400 ``{"error": "<Jackson message>"}``, e.g. an unknown inputSource type.

Not confirmed against Druid (documented behaviour only): 503 from a non-leader Overlord, Basic auth
(401/403), the ``google`` input source (Druid's Google extension cannot be pointed at an emulator),
``azureStorage`` (Druid >= 30; the 29.0.0 extension has ``azure`` only), 400 for unknown ids on older
Druid.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

KNOWN_TYPES = ["druid", "http", "inline", "local"]
TASK = "/druid/indexer/v1/task"
FAIL_MSG = "Failed to run task with an exception. See middleManager or indexer logs for more details."
READ_FAILED = ("java.lang.RuntimeException: Error occurred while trying to read uri: {uri}\n"
               "\tat org.apache.druid.data.input.impl.InputEntityIteratingReader.lambda$read$0"
               "(InputEntityIteratingReader.java:81)\n")
_reading = threading.local()  # the URI a task thread is reading, for Druid's error message


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class OverlordDouble:
    def __init__(self, *, s3=None, azurite=None, gcs=None, extensions=("s3", "google", "azure", "azureStorage"),
                 username=None, password=None, pending_seconds=0.3, running_seconds=0.3):
        self.s3, self.azurite, self.gcs = s3, azurite, gcs
        self.known_types = KNOWN_TYPES + list(extensions)
        self.username, self.password = username, password
        self.pending_seconds, self.running_seconds = pending_seconds, running_seconds
        self.tasks: dict[str, dict] = {}
        self.datasources: dict[str, int] = {}
        self.submitted: list[dict] = []
        self.not_leader_responses = 0  # answer this many submissions with 503 first
        self.unknown_id_status = 404  # 400 for older Druid
        self.stuck = False  # never leave PENDING
        self.no_reports = False  # answer /reports with 404, as a cluster keeping no reports does
        # seconds between a task's SUCCESS and its rows being served to SQL (a real Druid's historicals load
        # the new segments after the task ends: seconds when idle, minutes on a busy machine)
        self.serve_seconds = 0.0
        self.unserved: list[tuple[float, str, int]] = []  # (when, datasource, its count from then on)
        self.lock = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                double._dispatch(self, "GET")

            def do_POST(self):
                double._dispatch(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def batch_url(self) -> str:
        return self.url + TASK

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # -- HTTP plumbing ------------------------------------------------------------------------------
    def _send(self, h, status, body=None, content_type="application/json", headers=None):
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        h.send_response(status)
        if data or body is not None:
            h.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _authorized(self, h) -> bool:
        if not self.username:
            return True
        want = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        got = h.headers.get("Authorization")
        if got == want:
            return True
        self._send(h, 401, b"", headers={"WWW-Authenticate": 'Basic realm="druid"'})
        return False

    def _dispatch(self, h, method):
        if not self._authorized(h):
            return
        parts = urlsplit(h.path)
        path = parts.path
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) if method == "POST" else b""
        if method == "POST" and path == TASK:
            return self._submit(h, body)
        m = re.fullmatch(TASK + r"/([^/]+)/(status|shutdown|reports)", path)
        if m:
            task_id, action = unquote(m.group(1)), m.group(2)
            if (method, action) == ("GET", "status"):
                return self._status(h, task_id)
            if (method, action) == ("GET", "reports"):
                return self._reports(h, task_id)
            if (method, action) == ("POST", "shutdown"):
                return self._shutdown(h, task_id)
        if method == "GET" and path == "/druid/indexer/v1/tasks":
            state = parse_qs(parts.query).get("state", [None])[0]
            if state not in (None, "pending", "waiting", "running", "complete"):
                return self._send(h, 400, f"Invalid state : {state}".encode(), "text/plain")
            with self.lock:
                rows = [t["status"] for t in self.tasks.values()]
            return self._send(h, 200, rows)
        if method == "GET" and path.rstrip("/") == "/druid/coordinator/v1/datasources":
            return self._send(h, 200, sorted(self.datasources))
        m = re.fullmatch(r"/druid/coordinator/v1/datasources/([^/]+)", path)
        if method == "GET" and m:
            name = unquote(m.group(1))
            return self._send(h, 200, {"name": name}) if name in self.datasources else self._send(h, 204)
        if method == "POST" and path == "/druid/v2/sql":
            return self._sql(h, body)
        self._send(h, 404, {"error": f"no resource {path}"})

    # -- tasks ----------------------------------------------------------------------------------------
    def _submit(self, h, body):
        if self.not_leader_responses > 0:
            self.not_leader_responses -= 1
            return self._send(h, 503)
        if "application/json" not in (h.headers.get("Content-Type") or ""):
            return self._send(h, 415, {"error": "Unsupported Media Type"})
        try:
            task = json.loads(body)
        except json.JSONDecodeError as e:
            return self._send(h, 500, {"error": f"Unexpected character: {e.msg}"})
        ttype = task.get("type")
        spec = task.get("spec") or {}
        io = spec.get("ioConfig") or {}
        source = io.get("inputSource") or {}
        if ttype not in ("index", "index_parallel"):
            return self._send(h, 400, {"error": f"Could not resolve type id '{ttype}' as a subtype of [Task]"})
        if source.get("type") not in self.known_types:
            return self._send(h, 400, {"error": f"Could not resolve type id '{source.get('type')}' as a subtype of "
                                                f"[simple type, class org.apache.druid.data.input.InputSource]: "
                                                f"known type ids = [{', '.join(self.known_types)}]"})
        if io.get("type") != ttype or (spec.get("tuningConfig") or {}).get("type", ttype) != ttype:
            return self._send(h, 400, {"error": "Cannot construct instance: mismatched ioConfig/tuningConfig type"})
        ds = (spec.get("dataSchema") or {}).get("dataSource")
        if not ds or ds.startswith(".") or "/" in ds:
            return self._send(h, 400, {"error": f"Invalid dataSource [{ds}]"})
        if not io.get("inputFormat"):
            return self._send(h, 400, {"error": "inputFormat must be specified"})
        rand = "".join(random.choice(string.ascii_lowercase) for _ in range(8))
        task_id = task.get("id") or f"{ttype}_{ds}_{rand}_{_now()}"
        status = {"id": task_id, "groupId": task_id, "type": ttype, "createdTime": _now(),
                  "queueInsertionTime": "1970-01-01T00:00:00.000Z", "statusCode": "RUNNING", "status": "RUNNING",
                  "runnerStatusCode": "PENDING", "duration": -1,
                  "location": {"host": None, "port": -1, "tlsPort": -1}, "dataSource": ds, "errorMsg": None}
        with self.lock:
            self.tasks[task_id] = {"status": status, "task": task, "shutdown": False}
            self.submitted.append(task)
        threading.Thread(target=self._run, args=(task_id,), daemon=True).start()
        self._send(h, 200, {"task": task_id})

    def _status(self, h, task_id):
        with self.lock:
            t = self.tasks.get(task_id)
            st = dict(t["status"]) if t else None
        if st is None:
            msg = f"Cannot find any task with id: [{task_id}]".encode()
            return self._send(h, self.unknown_id_status, msg, "text/plain")  # Druid 33: 404, plain text
        self._send(h, 200, {"task": task_id, "status": st})

    def _reports(self, h, task_id):
        with self.lock:
            t = self.tasks.get(task_id)
        if t is None:
            return self._send(h, 404, f"Cannot find any task with id: [{task_id}]".encode(), "text/plain")
        if self.no_reports:  # a cluster whose task logs keep no reports (druid.indexer.logs.type=noop)
            msg = b"No task reports were found for this task. The task may not exist, or it may not have completed yet."
            return self._send(h, 404, msg, "text/plain")
        stats = t.get("row_stats")
        # The shape a real Druid 33 gave for an index_parallel task run sequentially (the default: one sub-task):
        # rowStats flat per phase, processedBytes, recordsProcessed, segmentsPublished, and a taskContext report.
        phase = {"processed": 0, "processedBytes": 0, "processedWithError": 0, "thrownAway": 0, "unparseable": 0,
                 **(stats or {})}
        payload = {"ingestionState": "COMPLETED", "unparseableEvents": {},
                   "rowStats": {"determinePartitions": phase, "buildSegments": phase} if stats else {},
                   "errorMsg": t.get("report_error"), "segmentAvailabilityConfirmed": False,
                   "segmentAvailabilityWaitTimeMs": 0, "recordsProcessed": {},
                   "segmentsPublished": 1 if stats and stats.get("processed") else 0}
        self._send(h, 200, {"ingestionStatsAndErrors": {"type": "ingestionStatsAndErrors", "taskId": task_id,
                                                        "payload": payload},
                            "taskContext": {"type": "taskContext", "taskId": task_id,
                                            "payload": {"forceTimeChunkLock": True}}})

    def _shutdown(self, h, task_id):
        with self.lock:
            t = self.tasks.get(task_id)
            if t is None:
                return self._send(h, 404, f"Cannot find any task with id: [{task_id}]".encode(), "text/plain")
            if t["status"]["statusCode"] == "RUNNING":
                t["shutdown"] = True
                runner = t["status"]["runnerStatusCode"]
                self._finish(t, "FAILED", "Shutdown request from user")
                t["status"]["runnerStatusCode"] = runner  # Druid 33: FAILED at once, the runner catches up later
        self._send(h, 200, {"task": task_id})

    def _finish(self, t, code, error=None):
        st = t["status"]
        st.update(statusCode=code, status=code, runnerStatusCode="WAITING", errorMsg=error,
                  duration=max(1, int((time.time() - t.get("started", time.time())) * 1000)))

    def _run(self, task_id):
        t = self.tasks[task_id]
        t["started"] = time.time()
        time.sleep(self.pending_seconds)
        while self.stuck and not t["shutdown"]:
            time.sleep(0.05)
        if t["shutdown"]:
            return
        with self.lock:
            t["status"]["runnerStatusCode"] = "RUNNING"
        time.sleep(self.running_seconds)
        _reading.uri = _reading.stats = None
        try:
            rows = self._ingest(t["task"])
            error = None
        except Exception as e:  # Druid 33: errorMsg is the stack trace; the report adds the causes
            if _reading.uri:
                error = READ_FAILED.format(uri=_reading.uri) + "\t... 30 more\n"
                t["report_error"] = (READ_FAILED.format(uri=_reading.uri)
                                     + f"Caused by: {type(e).__module__}.{type(e).__name__}: {e}\n")
            else:
                rows, error = 0, f"{FAIL_MSG} ({type(e).__name__}: {e})"
            rows = 0
        with self.lock:
            if t["shutdown"]:
                return
            if error:
                self._finish(t, "FAILED", error)
                return
            t["row_stats"] = _reading.stats
            ds = t["status"]["dataSource"]
            append = t["task"]["spec"]["ioConfig"].get("appendToExisting", False)
            before = next((n for _, d, n in reversed(self.unserved) if d == ds), self.datasources.get(ds, 0))
            self.unserved.append((time.time() + self.serve_seconds, ds, (before if append else 0) + rows))
            self._serve()
            self._finish(t, "SUCCESS")

    def _serve(self):
        """Rows of finished tasks whose segments are served by now (call with the lock held)."""
        now = time.time()
        while self.unserved and self.unserved[0][0] <= now:
            _, ds, rows = self.unserved.pop(0)
            self.datasources[ds] = rows

    # -- what Druid does with the inputSource ---------------------------------------------------------
    def _ingest(self, task) -> int:
        io = task["spec"]["ioConfig"]
        source = io["inputSource"]
        if io["inputFormat"].get("type") != "json":
            raise ValueError("only json inputFormat is supported by this double")
        good = bad = 0
        for blob in self._read_all(source):
            g, b = self._count(blob)
            good, bad = good + g, bad + b
        _reading.stats = {"processed": good, "processedBytes": 0, "processedWithError": 0, "thrownAway": 0,
                          "unparseable": bad}
        return good

    @staticmethod
    def _count(blob: bytes) -> tuple[int, int]:
        """(rows, unparseable lines): Druid 33 drops a line it cannot parse and still ends SUCCESS."""
        good = bad = 0
        for line in blob.splitlines():
            if line.strip():
                try:
                    json.loads(line)
                    good += 1
                except ValueError:
                    bad += 1
        return good, bad

    def _read_all(self, source):
        kind = source["type"]
        uris = source.get("uris") or []
        if kind in ("s3", "google", "azure", "azureStorage"):
            given = [k for k in ("uris", "prefixes", "objects") if source.get(k)]
            if len(given) != 1:
                raise ValueError("exactly one of uris, prefixes, objects")
            if source.get("prefixes") or source.get("objects"):
                raise ValueError("this double reads uris only")
            scheme = {"s3": "s3", "google": "gs", "azure": "azure", "azureStorage": "azureStorage"}[kind]
            for uri in uris:
                if not uri.startswith(scheme + "://"):
                    raise ValueError(f"Invalid URI scheme [{uri.split('://')[0]}] must be [{scheme}]")
        if kind == "local":
            if source.get("baseDir"):
                raise ValueError("this double reads files only")
            for f in source["files"]:
                _reading.uri = f"file:{f}"
                try:
                    with open(f, "rb") as fh:
                        yield fh.read()
                except FileNotFoundError:  # Druid's LocalInputSource drops it like an empty file
                    continue
        elif kind == "http":
            for uri in uris:
                _reading.uri = uri
                with urllib.request.urlopen(uri, timeout=10) as resp:
                    yield resp.read()
        elif kind == "s3":
            import boto3
            from botocore.config import Config

            # Druid's S3 extension (29.0.0, checked) honours endpointConfig only beside "properties".
            own = (source.get("endpointConfig") or {}).get("url") if "properties" in source else None
            endpoint = own or self.s3.endpoint
            client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=self.s3.access_key,
                                  aws_secret_access_key=self.s3.secret_key, region_name="us-east-1",
                                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
            for uri in uris:
                _reading.uri = uri
                bucket, key = uri[len("s3://"):].split("/", 1)
                yield client.get_object(Bucket=bucket, Key=key)["Body"].read()
        elif kind == "google":
            client = self.gcs.client()
            for uri in uris:
                _reading.uri = uri
                bucket, key = uri[len("gs://"):].split("/", 1)
                yield client.bucket(bucket).blob(key).download_as_bytes()
        elif kind in ("azure", "azureStorage"):
            service = self.azurite.service_client()
            for uri in uris:
                _reading.uri = uri
                rest = uri.split("://", 1)[1]
                if kind == "azureStorage":
                    account, rest = rest.split("/", 1)
                    if account != "devstoreaccount1":
                        raise ValueError(f"unknown storage account {account}")
                container, key = rest.split("/", 1)
                yield service.get_container_client(container).download_blob(key).readall()

    # -- SQL ------------------------------------------------------------------------------------------
    def _sql(self, h, body):
        try:
            query = json.loads(body)["query"]
        except (json.JSONDecodeError, KeyError):
            return self._send(h, 400, {"error": "Malformed query", "errorMessage": "query is required"})
        m = re.fullmatch(r'\s*SELECT COUNT\(\*\) AS cnt FROM "((?:[^"]|"")+)"\s*', query, re.I)
        if not m:
            return self._send(h, 400, {"error": "Unsupported", "errorMessage": "this double answers COUNT(*) only"})
        ds = m.group(1).replace('""', '"')
        with self.lock:
            self._serve()
        if ds not in self.datasources:  # Druid 33's answer, word for word in shape
            return self._send(h, 400, {"error": "druidException", "errorCode": "invalidInput", "persona": "USER",
                                       "category": "INVALID_INPUT",
                                       "errorMessage": f"Object '{ds}' not found (line [1], column [22])",
                                       "context": {"sourceType": "sql"}})
        self._send(h, 200, [{"cnt": self.datasources[ds]}])
