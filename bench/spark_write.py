"""Spark benchmark: executors writing their own partitions vs the jobs' current path vs s3a.

Generates ``--size-mib`` (default 1024) of report rows shaped like sl_projects.json in
``--partitions`` (16) partitions on ``local[2]``, cached before timing, then times, against
SeaweedFS on loopback, median of ``--reps`` (3) interleaved repetitions:

* ``write_partitions``: this project; every task writes its own partition into a local file inside the
  JVM (Spark's JSON) and uploads it (``transport="spool"``, the default);
* ``write_partitions`` with ``transport="frames"``: the rows cross to Python one by one (``--no-frames``
  leaves it out);
* current path: what the ml-analytics jobs do today: ``coalesce(1)`` -> ``df.write.json`` to local
  disk -> rename the part file -> upload that one file with this project's ``upload_to_cloud``;
* s3a: Spark's own writer, ``df.write.json("s3a://…")`` with hadoop-aws of pyspark's bundled
  Hadoop version and its AWS SDK bundle (Maven Central through ``spark.jars.packages``, or
  ``--jars DIR`` holding the two jars), default FileOutputCommitter.

By default the rows are cached before timing, so only the writing is timed. ``--computed`` leaves
them uncached, as in a job where the report is computed while it is written: there ``coalesce(1)``
also pulls the computation into one task. The store runs on the same 2 cores as Spark, so every
method is CPU-bound; CPU seconds per kind of process are printed for each run.

    pip install -e '.[aws,spark,test]'
    python bench/spark_write.py                   # the full run
    python bench/spark_write.py --size-mib 128 --reps 1
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

MiB = 1024 * 1024
# Enough rows for the JIT to compile every method's hot paths before timing (with 20,000 the method
# that ran first in a repetition paid ~1.4x its CPU compiling them); each repetition also starts with
# another method.
WARM_UP_ROWS = 200_000


def hadoop_version() -> str:
    import pyspark

    jars = glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "hadoop-client-api-*.jar"))
    if not jars:
        raise SystemExit("cannot find pyspark's bundled Hadoop (jars/hadoop-client-api-*.jar)")
    return os.path.basename(jars[0])[len("hadoop-client-api-"):-len(".jar")]


def report_rows(spark, rows: int, partitions: int):
    """Rows like examples/data/sl_projects.json (~600 bytes of JSON each), deterministic."""
    ts = "date_format(timestamp_seconds({} + id * 7), \"yyyy-MM-dd'T'HH:mm:ss'Z'\")"
    return spark.range(0, rows, numPartitions=partitions).selectExpr(
        "concat('Improving school infrastructure, phase ', cast(id % 50 as string)) as project_title",
        "'Improve learning outcomes through better classrooms and libraries' as project_goal",
        ts.format(1_780_000_000) + " as project_created_date",
        ts.format(1_781_000_000) + " as project_updated_date",
        "substr(md5(cast(id as string)), 1, 24) as project_id",
        "substr(md5(cast(id % 1000 as string)), 1, 24) as solution_id",
        "substr(md5(cast(id % 7 as string)), 1, 24) as program_id",
        "element_at(array('School Leadership Program', 'Teacher Development Program', 'Library Program'),"
        " cast(id % 3 as int) + 1) as program_name",
        "md5(concat('user-', cast(id % 100000 as string))) as createdBy",
        "element_at(array('Karnataka', 'Punjab', 'Odisha', 'Andhra Pradesh'), cast(id % 4 as int) + 1) as state_name",
        "element_at(array('Bangalore', 'Ludhiana', 'Cuttack', 'Guntur', 'Mysore'), cast(id % 5 as int) + 1)"
        " as district_name",
        "cast(29000000000 + id % 50000 as string) as school_code",
        "concat('GHPS School ', cast(id % 50000 as string)) as school_name",
        "'Sunbird' as organisation_name",
        "element_at(array('started', 'inProgress', 'submitted'), cast(id % 3 as int) + 1) as status_of_project",
        "md5(concat('task-', cast(id as string))) as task_id",
        "element_at(array('Collect funds', 'Meet the parents', 'Paint the walls'), cast(id % 3 as int) + 1) as tasks",
        "id % 2 = 0 as task_evidence_status",
        "cast(id % 10 as int) as task_count",
        "cast(id % 6 as int) as project_evidence_count",
        "'false' as private_program")


class CgroupCpu:
    """CPU seconds of this process and everything it starts from now on (the Spark driver JVM, executors,
    their Python daemons and workers, a standalone cluster's master and workers), read from a cgroup's
    ``cpuacct.usage``: exact, and it counts processes that ended between two readings (PySpark's daemon
    lets the kernel reap its workers, so their CPU never reaches any parent's counters). The store, started
    before, stays outside. None when this machine allows no cgroup."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self):
        self.path = self.ROOT / f"ml-analytics-bench-{os.getpid()}"
        self.path.mkdir()
        (self.path / "cgroup.procs").write_text(str(os.getpid()))
        self.last = self.read()

    @classmethod
    def open(cls):
        try:
            return cls()
        except OSError:
            return None

    def read(self) -> float:
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def delta(self) -> float:
        now = self.read()
        diff, self.last = now - self.last, now
        return diff

    def close(self) -> None:
        (self.ROOT / "cgroup.procs").write_text(str(os.getpid()))
        for pid in (self.path / "cgroup.procs").read_text().split():  # whatever is left: move it out
            try:
                (self.ROOT / "cgroup.procs").write_text(pid)
            except OSError:
                pass
        try:
            self.path.rmdir()
        except OSError:
            pass


class CpuMeter:
    """CPU seconds spent since the last call, per kind of process under this one (and the store)."""

    def __init__(self, *extra_pids: int):
        import psutil

        self.psutil, self.extra = psutil, extra_pids
        self.last: dict[str, float] = {}

    def totals(self) -> dict[str, float]:
        me = self.psutil.Process()
        procs = [me, *me.children(recursive=True)] + [self.psutil.Process(p) for p in self.extra]
        out: dict[str, float] = {}
        for p in procs:
            try:
                t = p.cpu_times()
                name = p.name()
            except self.psutil.Error:
                continue
            kind = "driver" if p.pid == me.pid else "jvm" if "java" in name else \
                "store" if "weed" in name else "python workers" if "python" in name else name
            out[kind] = out.get(kind, 0.0) + t.user + t.system
        return out

    def delta(self) -> str:
        now = self.totals()
        diff = {k: v - self.last.get(k, 0.0) for k, v in now.items()}
        self.last = now
        return ", ".join(f"{k} {v:.1f}" for k, v in sorted(diff.items()) if v >= 0.05)


def remove_prefix(server, bucket: str, prefix: str) -> None:
    client = server.boto3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--cluster", action="store_true",
                    help="start a standalone cluster (a master and two workers of one core each, from the pyspark "
                         "wheel: tests/harness/spark_cluster.py) and run on it instead of --master")
    ap.add_argument("--driver-memory", default="3g")
    ap.add_argument("--jars", default=None, help="folder with hadoop-aws-*.jar and aws-java-sdk-bundle-*.jar "
                                                 "(default: fetch them through spark.jars.packages)")
    ap.add_argument("--no-s3a", action="store_true")
    ap.add_argument("--no-frames", action="store_true", help="leave out write_partitions(transport='frames')")
    ap.add_argument("--computed", action="store_true",
                    help="do not cache the rows: each method computes them as it writes, as a job does "
                         "(then coalesce(1) computes everything in one task)")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark import StorageLevel
    from pyspark.sql import SparkSession

    from ml_analytics.cloud_storage.cloud import MultiCloud
    from ml_analytics.config import Config
    from ml_analytics.spark import write_partitions
    from ml_analytics.testing.servers import SeaweedFS

    work = Path(args.work or tempfile.mkdtemp(prefix="spark-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    server = SeaweedFS(workdir=work / "seaweed").start()
    meter = CgroupCpu.open()  # from here on, every process this one starts is counted (the store is not)
    cluster = None
    try:
        if args.cluster:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from harness.spark_cluster import SparkCluster

            cluster = SparkCluster(work / "cluster", worker_memory="2g").start()
            args.master = cluster.url
        bucket = server.create_bucket("bench")
        cfg_path = work / "config.ini"
        cfg_path.write_text(f"[S3]\nendpoint_url = {server.endpoint}\naccess_key = {server.access_key}\n"
                            f"secret_access_key = {server.secret_key}\nregion_name = us-east-1\n"
                            f"bucket_name = {bucket}\nchecksum_algorithm = crc64nvme\n")
        cfg_path.chmod(0o600)
        config = Config.load(cfg_path)

        builder = (SparkSession.builder.master(args.master).appName("ml-analytics spark_write bench")
                   .config("spark.driver.memory", args.driver_memory).config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.local.dir", str(work / "spark-local")))
        if cluster is not None:
            for k, v in {**cluster.driver_conf(), "spark.executor.memory": "1500m",
                         "spark.driver.memory": args.driver_memory}.items():
                builder = builder.config(k, v)
        hv = hadoop_version()
        if not args.no_s3a:
            if args.jars:
                jars = sorted(glob.glob(os.path.join(args.jars, "hadoop-aws-*.jar"))
                              + glob.glob(os.path.join(args.jars, "aws-java-sdk-bundle-*.jar")))
                builder = builder.config("spark.jars", ",".join(jars))
            else:
                builder = builder.config("spark.jars.packages", f"org.apache.hadoop:hadoop-aws:{hv}")
            for k, v in {"fs.s3a.endpoint": server.endpoint, "fs.s3a.path.style.access": "true",
                         "fs.s3a.connection.ssl.enabled": "false", "fs.s3a.access.key": server.access_key,
                         "fs.s3a.secret.key": server.secret_key, "fs.s3a.endpoint.region": "us-east-1",
                         "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
                         }.items():
                builder = builder.config(f"spark.hadoop.{k}", v)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")

        sample = report_rows(spark, 10_000, 1).toJSON().map(lambda s: len(s.encode()) + 1).mean()
        rows = int(args.size_mib * MiB / sample)
        df = report_rows(spark, rows, args.partitions)
        started = time.monotonic()
        if not args.computed:
            df = df.persist(StorageLevel.MEMORY_AND_DISK)
        assert df.count() == rows
        print(f"data: {rows} rows x {sample:.0f} B = {rows * sample / MiB:.0f} MiB of JSON in {args.partitions} "
              f"partitions, {'computed by each method' if args.computed else 'cached'} "
              f"({time.monotonic() - started:.1f} s); pyspark's Hadoop {hv}; master {args.master}")

        def ours(rep, transport="spool"):
            manifest = write_partitions(df, f"ours/{rep}", config=config, transport=transport)
            assert manifest.rows == (rows if df is full else WARM_UP_ROWS)
            return f"ours/{rep}/"

        def framed(rep):
            return ours(rep, "frames")

        def current(rep):
            out = work / f"current-{rep}"
            df.coalesce(1).write.mode("overwrite").json(str(out))
            part = next(out.glob("part-*.json"))
            final = out / "sl_projects.json"
            part.rename(final)
            with MultiCloud(config=config) as mc:
                results = mc.upload_to_cloud(blob_Path=f"current/{rep}", local_Path=str(out), file_Name=final.name)
            assert results[0].status == "uploaded"
            shutil.rmtree(out)
            return f"current/{rep}/"

        def s3a(rep):
            df.write.mode("overwrite").json(f"s3a://{bucket}/s3a/{rep}")
            return f"s3a/{rep}/"

        methods = {"write_partitions (this project)": ours}
        if not args.no_frames:
            methods["write_partitions, transport='frames'"] = framed
        methods["current path: coalesce(1) + local file + upload"] = current
        if not args.no_s3a:
            methods["Spark's own writer to s3a://"] = s3a
        cpu = CpuMeter()
        times: dict[str, list[float]] = {name: [] for name in methods}
        cpus: dict[str, list[float]] = {name: [] for name in methods}
        errors: dict[str, str] = {}
        full, df = df, report_rows(spark, WARM_UP_ROWS, args.partitions).persist()  # warm-up: Python workers,
        df.count()                                                             # clients, jars, JIT
        for name, run in methods.items():
            try:
                remove_prefix(server, bucket, run("warm-up"))
            except Exception as e:
                errors[name] = " ".join(str(e).split())[:600]
        df.unpersist()
        df = full
        for rep in range(args.reps):
            names = list(methods)
            for name in names[rep % len(names):] + names[:rep % len(names)]:  # each rep starts with another method
                run = methods[name]
                if name in errors:
                    continue
                tag = uuid.uuid4().hex[:8]
                cpu.delta()
                if meter:
                    meter.delta()
                t0 = time.monotonic()
                try:
                    prefix = run(tag)
                except Exception as e:  # s3a missing or refused: say what it printed, keep the others
                    errors[name] = " ".join(str(e).split())[:600]
                    continue
                times[name].append(time.monotonic() - t0)
                if meter:
                    cpus[name].append(meter.delta())
                total = f"; all of Spark {cpus[name][-1]:.1f} CPU s" if meter else ""
                print(f"  rep {rep + 1}: {name}: {times[name][-1]:.2f} s{total}; by process (sampled) "
                      f"{cpu.delta()}", flush=True)
                remove_prefix(server, bucket, prefix)
        base = statistics.median(times[next(iter(methods))])
        gib = args.size_mib / 1024
        where = "a standalone cluster of two one-core workers" if cluster else args.master
        print(f"\n{args.size_mib} MiB of report rows ({'computed' if args.computed else 'cached'}), "
              f"{args.partitions} partitions, {where}, SeaweedFS on loopback (its CPU not counted); "
              f"median of {args.reps}; ratio = method / write_partitions\n")
        if meter:
            cpu_base = statistics.median(cpus[next(iter(methods))]) / gib
            print("| method | seconds | ratio | CPU s per GiB (driver + executors + Python workers) | ratio |\n"
                  "|---|---|---|---|---|")
        else:
            print("no cgroup here: CPU per GiB not measured\n| method | seconds | ratio |\n|---|---|---|")
        for name, ts in times.items():
            if not ts:
                print(f"| {name} | failed | | |" + (" |" if meter else ""))
                continue
            m = statistics.median(ts)
            row = f"| {name} | {m:.2f} | {m / base:.2f} |"
            if meter:
                c = statistics.median(cpus[name]) / gib
                row += f" {c:.1f} | {c / cpu_base:.2f} |"
            print(row)
        for name, err in errors.items():
            print(f"\n{name} failed: {err}")
        spark.stop()
    finally:
        if cluster is not None:
            cluster.stop()
        if meter:
            meter.close()
        server.stop()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
