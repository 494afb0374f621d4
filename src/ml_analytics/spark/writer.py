"""``write_partitions``: the driver side of a Spark run that writes straight to every store.

The commit protocol (what a speculative or retried attempt cannot break):

1. Fix the run id on the driver and **claim** the run's folder: ``PREFIX/RUN_ID/_run.json``, written
   create-only to every store (S3 and Azure ``If-None-Match: *``, GCS ``ifGenerationMatch=0``, a hard
   link on LOCAL), so two runs cannot share a run id: the second is refused before its job starts.
2. Run one Spark job: each **task attempt** serializes its partition (in the JVM, into a local file:
   :mod:`.spool`) and uploads it under a key of its own, ``PREFIX/RUN_ID/part-00007-a<task attempt id>.json`` (``.json.gz`` with gzip). A retry or a
   speculative copy never writes another attempt's key. The config reaches executors as provider
   settings inside the task closure (:mod:`.shipping`); the job description and RDD name carry only
   the run's folder.
3. ``collect()`` gives the one attempt Spark counted as successful for each partition. The driver then
   **waits until every attempt of the job has ended** (Spark's active task count falls to zero; a
   killed speculative loser can run on for seconds), checks every kept object against the store (size,
   and the etag the store gave the attempt or the MD5 it keeps), removes every other object and every
   unfinished upload (open multipart uploads, uncommitted blocks, temporaries) under the run's folder,
   and writes ``_manifest.json`` **last**, create-only. No object the manifest lists can change after it:
   an attempt that outlived the wait can only add a key of its own, which the manifest does not list.
4. If the job or the checks fail: cancel the job, wait for its attempts to end, remove everything under
   the run's folder, and raise :class:`SparkWriteError` (no manifest, no stray objects).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from ..cloud_storage.capabilities import CreateOnly
from ..errors import StorageError, UsageError, one_line, redact
from ..keys import object_key
from .manifest import MANIFEST_NAME, Manifest, ManifestObject, now
from .removal import MARKER_NAME, abort_uploads, claim, delete_keys, remove_run, run_objects
from .shipping import open_multicloud, shipped_settings

COMPRESSIONS = {None: ".json", "gzip": ".json.gz"}
# How a partition's rows reach the Python worker: "spool" (the JVM writes them into a local file, see
# .spool), "frames" (one length-prefixed frame per row over PySpark's socket: more CPU, no local disk),
# "auto" (spool, else frames with a warning saying why).
TRANSPORTS = ("auto", "spool", "frames")
# How long the driver waits for the attempts Spark is still killing (a speculative loser's Python worker
# lives on 2-4 s after its kill: a 2 s poll, then spark.python.task.killTimeout) before it commits anyway.
ATTEMPTS_END_TIMEOUT = 60.0
_JOB_PROPERTIES = ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel")


class SparkWriteError(StorageError):
    """A write_partitions run failed; its objects were removed and no manifest was written."""


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def write_partitions(df, prefix: str, *, config=None, sections=None, compression: str | None = None,
                     compresslevel: int = 6, run_id: str | None = None, transport: str = "auto",
                     _task_hook: Callable[[int, int, str], None] | None = None,
                     _attempts_timeout: float = ATTEMPTS_END_TIMEOUT) -> Manifest:
    """Write every partition of ``df`` as newline-delimited JSON to every configured provider.

    ``config``: a config.ini path, a :class:`~ml_analytics.config.Config`, a MultiCloud, or None
    (``$ML_ANALYTICS_CONFIG``, else ``./config.ini``, else the environment; with none of them a
    ConfigError says where it looked); ``sections``:
    only these providers. ``compression``: None or ``"gzip"``. ``transport``: how rows reach the task's
    Python worker, ``"spool"`` (the JVM writes each partition into a file of the executor's local folders:
    the least CPU; needs local disk for the partitions being written), ``"frames"`` (row by row over
    PySpark's socket) or ``"auto"`` (spool, else frames, saying why). Returns the written
    :class:`Manifest` (``.rows``, ``.objects``, ``.uri``).
    """
    from .partition import partition_writer

    if not hasattr(df, "_jdf"):
        raise UsageError("write_partitions needs a classic PySpark DataFrame (Spark Connect is not supported)")
    if compression not in COMPRESSIONS:
        raise UsageError(f"compression must be None or 'gzip', got {compression!r}")
    if transport not in TRANSPORTS:
        raise UsageError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    if not 0 <= compresslevel <= 9:
        raise UsageError(f"compresslevel must be 0-9, got {compresslevel}")
    run_id = run_id or new_run_id()
    run = object_key(prefix, run_id)  # the key rule checks prefix and run id now, on the driver
    mc = open_multicloud(config, sections)
    try:
        providers = mc.providers()  # config errors surface here, before any Spark job
        sc = df.sparkSession.sparkContext
        warn_if_shipped_in_clear(sc, mc)
        rows = partition_rows(df, transport)  # compiles the JVM side once per SparkContext; no job yet
        claim(providers, run, run_id)  # two runs never share a run id (create-only marker)
        task = partition_writer(shipped_settings(mc), run, COMPRESSIONS[compression],
                                compresslevel if compression else None, _task_hook)
        written = rows.mapPartitions(task).setName(f"ml-analytics write_partitions {run}")
        group = f"ml-analytics-{run_id}-{uuid.uuid4().hex[:6]}"
        saved = {p: sc.getLocalProperty(p) for p in _JOB_PROPERTIES}
        sc.setJobGroup(group, f"ml-analytics write_partitions {run}", interruptOnCancel=True)
        try:
            results = written.collect()
        except BaseException as e:  # the job failed, or the caller was interrupted: leave nothing behind
            _stop_and_remove(sc, group, providers, run)
            if not isinstance(e, Exception):
                raise
            reason = redact(_spark_reason(e), mc.secrets)
            raise SparkWriteError(f"write_partitions {run}: the Spark job failed ({reason}); "
                                  "its objects were removed, no manifest written") from None
        finally:
            for prop, value in saved.items():
                sc.setLocalProperty(prop, value)
        try:
            wait_for_attempts(sc, group, _attempts_timeout)
            return commit(providers, run, run_id, results, compression)
        except BaseException:
            remove_run(providers, run)
            raise
    finally:
        if mc is not config:
            mc.close()


def partition_rows(df, transport: str = "auto"):
    """The RDD each task's Python function reads: its partition's rows as blocks of JSON lines."""
    from pyspark.rdd import RDD

    from .partition import FramedRows, SpooledRows

    sc = df.sparkSession.sparkContext
    if transport != "frames":
        from .spool import SpoolUnavailable, spooled_partitions

        try:
            return RDD(spooled_partitions(df), sc, SpooledRows())
        except SpoolUnavailable as e:
            if transport == "spool":
                raise UsageError(f"write_partitions: transport='spool' is not available: {e}") from None
            if not getattr(sc, "_ml_analytics_framed_warned", False):
                sc._ml_analytics_framed_warned = True
                import logging

                logging.getLogger(__name__).warning("write_partitions sends rows one by one to Python (more CPU): %s", e)
    return RDD(json_lines(df), sc, FramedRows())


def json_lines(df):
    """A JavaRDD of each row's JSON as UTF-8 bytes, in the DataFrame's partitions.

    Spark's own JSON generator (``to_json``, as ``DataFrame.toJSON`` and ``df.write.json`` use)
    produces the text; the rows cross to Python as raw bytes, with no UTF-16 string in between
    (measured: a third less time than ``toJSON``'s strings on 2 cores).
    """
    from pyspark.sql import functions as F

    jdf = df.select(F.to_json(F.struct("*")).cast("binary"))._jdf
    binary = df.sparkSession.sparkContext._jvm.org.apache.spark.sql.Encoders.BINARY()
    return getattr(jdf, "as")(binary).javaRDD()


def commit(providers: dict, run: str, run_id: str, results: list[dict], compression: str | None) -> Manifest:
    """Check the kept attempts' objects against the stores, drop everything else under the run's folder
    (other attempts' objects, unfinished uploads), then write the manifest everywhere, create-only."""
    by_partition: dict[int, dict[str, dict]] = {}
    for r in results:
        by_partition.setdefault(r["partition"], {})[r["provider"]] = r
    objects = []
    for partition in sorted(by_partition):
        got = by_partition[partition]
        first = next(iter(got.values()))
        missing = [s for s in providers if s not in got]
        if missing:
            raise SparkWriteError(f"write_partitions {run}: partition {partition} has no result for {missing[0]}")
        md5 = first.get("md5") or next((r.get("md5") for r in got.values() if r.get("md5")), None)
        objects.append(ManifestObject(first["key"], partition, first["rows"], first["bytes"], md5,
                                      first.get("crc64nvme")))
    manifest = Manifest(run_id, run, objects, {s: p.uri(f"{run}/{MANIFEST_NAME}") for s, p in providers.items()},
                        compression, now())
    keep = set(manifest.keys) | {f"{run}/{MARKER_NAME}"}
    for section, provider in providers.items():
        verify_objects(section, provider, objects, {p: got[section] for p, got in by_partition.items()})
        abort_uploads(provider, run)
        delete_keys(provider, [k for k in run_objects(provider, run) if k not in keep])
    body = manifest.to_json()
    for provider in providers.values():
        if provider.can(CreateOnly):
            provider.put_bytes_new(body, manifest.key)
        else:
            provider.put_bytes(body, manifest.key)
    for provider in providers.values():  # the manifest marks the run now; a folder holds parts + manifest
        provider.delete(f"{run}/{MARKER_NAME}")
    return manifest


def verify_objects(section: str, provider, objects: list[ManifestObject], results: dict[int, dict]) -> None:
    """Every kept object is in the store as its attempt wrote it: its size, and its checksum where the
    store tells one (the MD5 it keeps: GCS, single Put Blob, LOCAL, single-PUT S3), else the etag the
    store gave the attempt's upload (an S3 multipart upload, Azure blocks): an object another attempt
    replaced would differ."""
    def check(obj: ManifestObject) -> str | None:
        info = provider.stat(obj.key)
        if info is None:
            return f"{obj.key} is missing"
        if info.size != obj.bytes:
            return f"{obj.key} holds {info.size} bytes, its task wrote {obj.bytes}"
        written = results.get(obj.partition, {}).get("etag")
        stored = provider.stored_md5(info) if obj.md5 else None
        if stored:
            if stored != obj.md5:
                return f"{obj.key} has MD5 {stored}, its task wrote {obj.md5}"
        elif info.crc64 and obj.crc64nvme:
            if info.crc64 != obj.crc64nvme:
                return f"{obj.key} has CRC64 {info.crc64}, its task wrote {obj.crc64nvme}"
        elif written and info.etag and info.etag.strip('"') != written.strip('"'):
            return f"{obj.key} has etag {info.etag}, not the one its task's upload got ({written})"
        elif not info.etag and not written:
            return f"{obj.key}: the store gives neither an MD5 nor an etag to check it against"
        return None

    if not objects:
        return
    with ThreadPoolExecutor(min(16, len(objects))) as pool:
        problems = [p for p in pool.map(check, objects) if p]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SparkWriteError(f"{section}: {problems[0]}{more}; not committing the run")


def _active_attempts(sc, group: str) -> int:
    tracker = sc.statusTracker()
    active = 0
    for job in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job)
        for stage in (info.stageIds if info else ()):
            st = tracker.getStageInfo(stage)
            active += st.numActiveTasks if st else 0
    return active


def wait_for_attempts(sc, group: str, timeout: float = ATTEMPTS_END_TIMEOUT) -> bool:
    """Wait until no attempt of the run's job is running any more (speculative losers and retried attempts
    being killed included); False if some were still running at ``timeout`` (they can then only add keys
    of their own, which nothing lists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _active_attempts(sc, group):
            return True
        time.sleep(0.2)
    return False


def _stop_and_remove(sc, group: str, providers: dict, run: str) -> None:
    """Cancel what is left of the run's job, wait for its attempts to end, then remove its objects."""
    sc.cancelJobGroup(group)
    ended = wait_for_attempts(sc, group)
    remove_run(providers, run)
    if not ended:  # an attempt still running may add an object: look once more after it surely ended
        time.sleep(5.0)
        remove_run(providers, run)


def warn_if_shipped_in_clear(sc, mc) -> None:
    """Say once per application when credentials travel to executors of a cluster in clear text: the
    provider settings ride inside the task closures, which Spark encrypts only with
    spark.authenticate and spark.network.crypto.enabled on."""
    import logging

    conf = sc.getConf()
    master = conf.get("spark.master", "local")
    if master.startswith("local") or not mc.secrets or getattr(sc, "_ml_analytics_warned", False):
        return
    if conf.get("spark.network.crypto.enabled", "false").lower() != "true" or \
            conf.get("spark.authenticate", "false").lower() != "true":
        sc._ml_analytics_warned = True
        logging.getLogger(__name__).warning(
            "write_partitions sends the store credentials to the executors inside the tasks; on %s they cross the "
            "network in clear text: set spark.authenticate=true and spark.network.crypto.enabled=true (and the "
            "same secret on the master and workers), or let the executors take credentials from their own "
            "environment", master)


_PY_ERROR = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Input|Interrupt)): (.*)$", re.M)


def _spark_reason(exc: BaseException) -> str:
    """One line from a failed Spark job: the Python exception of the failing task, else Spark's first line."""
    text = str(exc)
    tail = text.split("PythonException", 1)[1] if "PythonException" in text else ""
    for name, message in _PY_ERROR.findall(tail):
        if not name.startswith(("org.", "java.", "scala.")):
            return one_line(f"{name.rsplit('.', 1)[-1]}: {message}", 300)
    for line in text.splitlines():
        line = line.strip(": \t")
        if line and not line.startswith("An error occurred while calling"):
            return one_line(line, 300)
    return type(exc).__name__
