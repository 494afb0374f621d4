"""write_partitions on pyspark local[2,4] (2 cores, up to 4 attempts per task) against the real
local servers: SeaweedFS (S3), Azurite, fake-gcs-server and a LOCAL folder.

Spark starts once for this module. Executors are Python workers of the same interpreter, so a
hook or UDF defined inside a test runs there (cloudpickle sends it by value).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil

import pytest
from conftest import EXAMPLE_DATA, fresh_name

pyspark = pytest.importorskip("pyspark")

from ml_analytics.errors import UsageError  # noqa: E402
from ml_analytics.spark import SparkWriteError, cleanup, ingest_manifest, read_manifest, write_partitions  # noqa: E402
from ml_analytics.spark.manifest import MANIFEST_NAME, read_object  # noqa: E402
from ml_analytics.spark.partition import END, FramedRows, Spool, SpooledRows, TruncatedInput, serialize  # noqa: E402
from ml_analytics.spark.shipping import open_multicloud  # noqa: E402
from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY  # noqa: E402

SPEC = json.loads((EXAMPLE_DATA.parent / "specs" / "sl-project.json").read_text())


def store_config(tmp_path, sections, seaweed=None, azurite=None, fake_gcs=None, extra="") -> str:
    text = "[COMMON]\nmax_retries = 2\n"
    if "LOCAL" in sections:
        text += f"[LOCAL]\nroot = {tmp_path / 'store'}\n"
    if "S3" in sections:
        bucket = seaweed.create_bucket(fresh_name("spark"))
        text += (f"[S3]\nendpoint_url = {seaweed.endpoint}\naccess_key = {seaweed.access_key}\n"
                 f"secret_access_key = {seaweed.secret_key}\nregion_name = us-east-1\nbucket_name = {bucket}\n")
    if "AZURE" in sections:
        container = azurite.create_container(fresh_name("az"))
        text += (f"[AZURE]\naccount_name = {AZURITE_ACCOUNT}\ncontainer_name = {container}\n"
                 f"account_key = {AZURITE_KEY}\nendpoint_url = {azurite.endpoint}\n")
    if "GCP" in sections:
        bucket = fake_gcs.create_bucket(fresh_name("gcs"))
        text += f"[GCP]\nbucket_name = {bucket}\nendpoint_url = {fake_gcs.endpoint}\n"
    path = tmp_path / "config.ini"
    path.write_text(text + extra)
    path.chmod(0o600)
    return str(path)


def stored(config, key_prefix):
    """{section: {key: bytes}} of every object under a folder, read back through each store."""
    mc = open_multicloud(config)
    try:
        return {s: {i.key: read_object(p, i.key) for i in p.list(key_prefix)} for s, p in mc.providers().items()}
    finally:
        mc.close()


def lines(blob: bytes) -> list[dict]:
    return [json.loads(line) for line in blob.splitlines() if line.strip()]


def numbers(spark, n=1200, partitions=6, empty=(3,)):
    """``partitions`` ranges of ids, those in ``empty`` filtered away (an empty partition)."""
    per = n // partitions
    keep = " and ".join(f"not (id >= {p * per} and id < {(p + 1) * per})" for p in empty) or "true"
    return spark.range(0, n, numPartitions=partitions).selectExpr(
        "id", "concat('school-', cast(id % 97 as string)) as school_name", "id * 1.5 as score").where(keep)


# -- the write ----------------------------------------------------------------------------------
def test_every_store_gets_one_object_per_partition_and_a_manifest(spark, tmp_path, seaweed, azurite, fake_gcs):
    cfg = store_config(tmp_path, ["LOCAL", "S3", "AZURE", "GCP"], seaweed, azurite, fake_gcs)
    df = numbers(spark, partitions=6, empty=(3,))
    manifest = write_partitions(df, "reports/daily", config=cfg)

    assert manifest.rows == df.count() == 1000
    assert [o.partition for o in manifest.objects] == [0, 1, 2, 4, 5]  # the empty partition wrote nothing
    # each task attempt writes a key of its own (part-NNNNN-a<task attempt id>.json): the manifest names the kept one
    assert all(re.fullmatch(rf"{manifest.run}/part-{o.partition:05d}-a\d+\.json", o.key) for o in manifest.objects)
    assert set(manifest.uris) == {"LOCAL", "S3", "AZURE", "GCP"}
    every = stored(cfg, manifest.run)
    for section, objects in every.items():
        assert sorted(objects) == sorted(manifest.keys + [manifest.key]), section
        for o in manifest.objects:
            body = objects[o.key]
            assert len(body) == o.bytes and hashlib.md5(body).hexdigest() == o.md5, (section, o.key)
            assert len(lines(body)) == o.rows
        assert json.loads(objects[manifest.key])["rows"] == 1000
    ids = sorted(r["id"] for o in manifest.objects for r in lines(every["S3"][o.key]))
    assert ids == sorted(r.id for r in df.select("id").collect())
    # The manifest reads back from any store's URI and from a local path
    for uri in manifest.uris.values():
        again = read_manifest(uri, config=cfg)
        assert again.objects == manifest.objects and again.rows == 1000


def test_gzip_objects(spark, tmp_path, seaweed):
    cfg = store_config(tmp_path, ["S3"], seaweed)
    df = numbers(spark, n=900, partitions=3, empty=())
    manifest = write_partitions(df, "gz", config=cfg, compression="gzip")
    objects = stored(cfg, manifest.run)["S3"]
    assert all(k.endswith(".json.gz") for k in manifest.keys) and manifest.compression == "gzip"
    for o in manifest.objects:
        body = objects[o.key]
        assert hashlib.md5(body).hexdigest() == o.md5 and len(body) == o.bytes
        assert len(lines(gzip.decompress(body))) == o.rows
    assert manifest.rows == 900


def test_empty_dataframe_commits_an_empty_manifest(spark, tmp_path):
    cfg = store_config(tmp_path, ["LOCAL"])
    manifest = write_partitions(numbers(spark, n=100, partitions=2, empty=(0, 1)), "empty", config=cfg)
    assert manifest.objects == [] and manifest.rows == 0
    assert list(stored(cfg, manifest.run)["LOCAL"]) == [manifest.key]


def test_large_partition_spills_and_uploads_multipart(spark, tmp_path, seaweed):
    """A partition above the in-memory limit (8 MiB) goes through a spill file and put_file."""
    cfg = store_config(tmp_path, ["S3", "LOCAL"], seaweed)
    df = spark.range(0, 200_000, numPartitions=2).selectExpr("id", "repeat('x', 100) as pad")
    manifest = write_partitions(df, "big", config=cfg)
    assert manifest.rows == 200_000 and max(o.bytes for o in manifest.objects) > 8 * 1024 * 1024
    objects = stored(cfg, manifest.run)
    for o in manifest.objects:
        assert hashlib.md5(objects["S3"][o.key]).hexdigest() == o.md5 == hashlib.md5(objects["LOCAL"][o.key]).hexdigest()


# -- retries and failures ------------------------------------------------------------------------------
def test_a_task_failing_after_its_upload_is_retried_onto_the_same_key(spark, tmp_path, seaweed):
    cfg = store_config(tmp_path, ["S3", "LOCAL"], seaweed)
    marker = str(tmp_path / "failed-attempts")

    def fail_first_attempt(partition, attempt, stage):
        if partition == 1 and attempt == 0 and stage == "uploaded":
            with open(marker, "a") as fh:
                fh.write(f"{partition}\n")
            raise RuntimeError("lost the executor after uploading")

    df = numbers(spark, partitions=4, empty=())
    manifest = write_partitions(df, "retry", config=cfg, _task_hook=fail_first_attempt)
    assert open(marker).read() == "1\n"  # the first attempt really failed, after its upload
    assert manifest.rows == 1200 and [o.partition for o in manifest.objects] == [0, 1, 2, 3]
    for section, objects in stored(cfg, manifest.run).items():
        assert len(objects) == 5, section  # 4 parts + manifest: the failed attempt's own object was removed
        assert sum(len(lines(objects[k])) for k in manifest.keys) == 1200


@pytest.mark.parametrize("transport", ["spool", "frames"])
def test_upstream_failure_never_leaves_a_truncated_partition(spark, tmp_path, seaweed, transport):
    """The trap: when a stage upstream fails, PySpark ends the partition function's input cleanly.
    Here a Python UDF fails 80% into partition 1 on its first attempt, after the JVM has flushed
    rows to the partition function: with PySpark's own deserializer that attempt sees a clean end
    after ~80k of its 100k rows (measured) and would upload them."""
    from pyspark.sql.functions import udf
    from pyspark.sql.types import LongType

    cfg = store_config(tmp_path, ["S3", "LOCAL"], seaweed)
    marker = str(tmp_path / "udf-failed")

    def fail_halfway(x):
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if ctx.partitionId() == 1 and ctx.attemptNumber() == 0 and x == 180_000:
            with open(marker, "a") as fh:
                fh.write("x")
            raise RuntimeError("upstream stage failed")
        return x * 2

    seen = str(tmp_path / "attempts")

    def record(partition, attempt, stage):
        with open(seen, "a") as fh:
            fh.write(f"{partition} {attempt} {stage}\n")

    df = spark.range(0, 400_000, numPartitions=4).withColumn("twice", udf(fail_halfway, LongType())("id"))
    manifest = write_partitions(df, "trap", config=cfg, _task_hook=record, transport=transport)
    assert open(marker).read() == "x"
    attempts = open(seen).read().splitlines()
    assert "1 1 uploaded" in attempts
    assert "1 0 serialized" not in attempts  # the cut-short first attempt was refused before its upload
    assert [o.rows for o in manifest.objects] == [100_000] * 4
    for section, objects in stored(cfg, manifest.run).items():
        part1 = lines(objects[next(o.key for o in manifest.objects if o.partition == 1)])
        assert [r["id"] for r in part1] == list(range(100_000, 200_000)), section


def test_input_without_the_end_mark_is_refused():
    import struct

    rows = [b'{"a":1}', b'{"a":2}']
    framed = b"".join(struct.pack("!i", len(r)) + r for r in rows)
    complete = list(FramedRows().load_stream(io.BytesIO(framed + struct.pack("!i", -1))))
    assert complete == [(b'{"a":1}\n{"a":2}\n', 2), END]
    for cut in (framed, framed[:-3], framed + b"\x00\x00"):
        got = list(FramedRows().load_stream(io.BytesIO(cut)))
        assert END not in got
        with pytest.raises(TruncatedInput):
            serialize(iter(got), Spool(), gzip_level=None)
    spool = Spool()
    assert serialize(iter(complete), spool, gzip_level=None) == 2 and spool.finish() == b'{"a":1}\n{"a":2}\n'
    big = [b"x" * 1000] * 3000  # several blocks: rows and bytes add up across them
    framed = b"".join(struct.pack("!i", len(r)) + r for r in big) + struct.pack("!i", -1)
    spool = Spool()
    assert serialize(FramedRows().load_stream(io.BytesIO(framed)), spool, gzip_level=None) == 3000
    assert spool.size == 3000 * 1001 and spool.finish() == (b"x" * 1000 + b"\n") * 3000


def _spool_record(path, rows, size) -> bytes:
    import struct

    record = f"{path}\t{rows}\t{size}".encode()
    return struct.pack("!i", len(record)) + record


def test_a_spooled_partition_is_read_whole_or_not_at_all_and_removed(tmp_path):
    """The JVM's record names the partition's file; END only with the JVM's end mark and every byte."""
    import struct

    content = b'{"a":1}\n{"a":"\xe0\xb2\x95"}\n' * 5000  # several read blocks with a small BLOCK
    path = tmp_path / "temp_local_1"
    path.write_bytes(content)
    reader = SpooledRows()
    reader.BLOCK = 4096
    got = list(reader.load_stream(io.BytesIO(_spool_record(path, 10_000, len(content)) + struct.pack("!i", -1))))
    assert got[-2:] == [(b"", 10_000), END] and b"".join(b for b, _ in got[:-1]) == content
    assert not path.exists()  # read, then removed
    spool = Spool()
    path.write_bytes(content)
    blocks = SpooledRows().load_stream(io.BytesIO(_spool_record(path, 10_000, len(content)) + struct.pack("!i", -1)))
    assert serialize(blocks, spool, gzip_level=None) == 10_000 and spool.finish() == content
    path.write_bytes(content)  # gzip compresses the mapped views as it does bytes
    blocks = SpooledRows().load_stream(io.BytesIO(_spool_record(path, 10_000, len(content)) + struct.pack("!i", -1)))
    spool = Spool()
    assert serialize(blocks, spool, gzip_level=6) == 10_000 and gzip.decompress(spool.finish()) == content
    path.write_bytes(b"")  # an empty partition's file cannot be mapped: no blocks, no rows, END
    empty = list(SpooledRows().load_stream(io.BytesIO(_spool_record(path, 0, 0) + struct.pack("!i", -1))))
    assert empty == [(b"", 0), END] and not path.exists()

    path.write_bytes(content)
    cut = list(SpooledRows().load_stream(io.BytesIO(_spool_record(path, 10_000, len(content)))))
    assert cut == []  # no end mark: the file is not even read (the JVM removes it when the task ends)
    short = list(SpooledRows().load_stream(io.BytesIO(_spool_record(path, 10_000, len(content) + 1)
                                                      + struct.pack("!i", -1))))
    assert END not in short and not path.exists()  # not the bytes the JVM wrote: refused
    for blocks in (iter(cut), iter(short), SpooledRows().load_stream(io.BytesIO(struct.pack("!i", -1)))):
        with pytest.raises(TruncatedInput):
            serialize(blocks, Spool(), gzip_level=None)


def test_a_cut_short_stream_leaves_no_object_and_no_open_upload(tmp_path, seaweed):
    from ml_analytics.spark.partition import Encoded

    cfg = store_config(tmp_path, ["S3"], seaweed)
    mc = open_multicloud(cfg)
    s3 = mc.provider("S3")
    block = (b'{"pad":"' + b"x" * 1000 + b'"}\n') * 1000
    cut = [(block, 1000)] * 20  # ~20 MiB, several parts already sent, then no END
    with pytest.raises(TruncatedInput):
        s3.put_stream(iter(Encoded(iter(cut), gzip_level=None)), "cut/part-00000.json")
    assert s3.stat("cut/part-00000.json") is None
    client = seaweed.boto3_client()
    assert not client.list_multipart_uploads(Bucket=s3.bucket, Prefix="cut/").get("Uploads")
    whole = Encoded(iter(cut + [END]), gzip_level=None)
    s3.put_stream(iter(whole), "cut/part-00001.json")
    assert s3.stat("cut/part-00001.json").size == whole.size == 20 * len(block) and whole.rows == 20_000
    from ml_analytics.checksums import crc64, crc64_hex

    assert crc64_hex(crc64(read_object(s3, "cut/part-00001.json"))) == whole.crc64
    mc.close()


def test_a_run_that_fails_for_good_leaves_nothing(spark, tmp_path, seaweed, azurite):
    cfg = store_config(tmp_path, ["S3", "AZURE", "LOCAL"], seaweed, azurite)
    secret = seaweed.secret_key

    def always_fail(partition, attempt, stage):
        if partition == 2 and stage == "uploaded":
            raise RuntimeError(f"broken with {secret}")  # a library that puts a credential in its message

    df = numbers(spark, partitions=4, empty=())
    with pytest.raises(SparkWriteError) as info:
        write_partitions(df, "doomed", config=cfg, run_id="run-1", _task_hook=always_fail)
    message = str(info.value)
    assert "\n" not in message and secret not in message and "RuntimeError: broken with ***" in message
    assert "doomed/run-1" in message
    for section, objects in stored(cfg, "doomed/run-1").items():
        assert objects == {}, section
    sc = spark.sparkContext
    assert sc.getLocalProperty("spark.jobGroup.id") is None  # the caller's job properties are restored


def test_a_chosen_run_id_never_reuses_a_folder_that_holds_another_run(spark, tmp_path):
    cfg = store_config(tmp_path, ["LOCAL"])
    df = numbers(spark, n=40, partitions=2, empty=())
    first = write_partitions(df, "reports", config=cfg, run_id="nightly")
    before = stored(cfg, "reports/nightly")

    def always_fail(partition, attempt, stage):
        raise RuntimeError("would remove the run folder on failure")

    with pytest.raises(UsageError, match="already holds objects"):
        write_partitions(df, "reports", config=cfg, run_id="nightly", _task_hook=always_fail)
    assert stored(cfg, "reports/nightly") == before and first.rows == 40


# -- how the rows reach the Python worker ---------------------------------------------------------
def awkward_rows(spark):
    """Unicode, quotes, control characters, nulls, nested values, an empty partition."""
    return spark.range(0, 4000, numPartitions=4).where("id < 2000 or id >= 3000").selectExpr(
        "id", "concat('ಕರ್ನಾಟಕ \"school\" ', cast(id % 7 as string), char(10), 'तमिल') as name",
        "if(id % 5 = 0, null, id * 0.25) as score", "named_struct('a', id % 3, 'b', array('x', null, '\\\\')) as nested",
        "cast(id % 2 = 0 as boolean) as even", "timestamp_seconds(1780000000 + id) as at")


def spool_files(spark) -> set[str]:
    """The block manager files PartitionSpool writes (temp_local_*) in the driver's local folders."""
    import os

    dirs = spark.sparkContext._jvm.org.apache.spark.SparkEnv.get().blockManager().diskBlockManager().localDirs()
    found = set()
    for d in dirs:
        for root, _, files in os.walk(d.getPath()):
            found |= {os.path.join(root, f) for f in files if f.startswith("temp_local_")}
    return found


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_the_spool_and_the_frames_store_the_same_bytes_as_spark_s_json(spark, tmp_path, compression):
    cfg = store_config(tmp_path, ["LOCAL"])
    df = awkward_rows(spark)
    expected = ["".join(line + "\n" for line in part) for part in df.toJSON().glom().collect()]
    spooled = write_partitions(df, "spooled", config=cfg, transport="spool", compression=compression)
    framed = write_partitions(df, "framed", config=cfg, transport="frames", compression=compression)
    assert spooled.rows == framed.rows == 3000
    for manifest in (spooled, framed):
        objects = stored(cfg, manifest.run)["LOCAL"]
        got = {o.partition: objects[o.key] for o in manifest.objects}
        assert sorted(got) == [0, 1, 3]  # partition 2 is empty: no object
        for partition, blob in got.items():
            text = gzip.decompress(blob) if compression else blob
            assert text.decode("utf-8") == expected[partition], (manifest.run, partition)
    assert [(o.partition, o.rows, o.bytes, o.crc64nvme) for o in spooled.objects] == \
        [(o.partition, o.rows, o.bytes, o.crc64nvme) for o in framed.objects]
    assert not spool_files(spark)


def test_the_spool_follows_the_session_s_json_settings_as_to_json_does(spark, tmp_path):
    """The JVM-side writer uses Spark's JSON generator with the session's time zone and null handling,
    so its bytes stay DataFrame.toJSON's when a job changes them."""
    cfg = store_config(tmp_path, ["LOCAL"])
    settings = {"spark.sql.session.timeZone": "Asia/Kolkata", "spark.sql.jsonGenerator.ignoreNullFields": "false"}
    saved = {k: spark.conf.get(k, None) for k in settings}
    try:
        for k, v in settings.items():
            spark.conf.set(k, v)
        df = awkward_rows(spark)
        expected = ["".join(line + "\n" for line in part) for part in df.toJSON().glom().collect()]
        assert '"score":null' in expected[0] and "+05:30" in expected[0]  # the settings show in the bytes
        manifest = write_partitions(df, "settings", config=cfg, transport="spool")
    finally:
        for k, v in saved.items():
            spark.conf.unset(k) if v is None else spark.conf.set(k, v)
    objects = stored(cfg, manifest.run)["LOCAL"]
    for o in manifest.objects:
        assert objects[o.key].decode("utf-8") == expected[o.partition], o.partition


def test_spool_files_go_when_a_python_worker_dies_mid_upload(spark, tmp_path, seaweed):
    """A partition above the in-memory limit is being streamed from its spool file when the Python
    worker dies (os._exit): the JVM removes the file when the task ends, the retry writes the object."""
    cfg = store_config(tmp_path, ["S3"], seaweed)
    marker = str(tmp_path / "died")

    def die_once(partition, attempt, stage):
        import os

        if partition == 0 and attempt == 0 and stage == "streaming":
            with open(marker, "a") as fh:
                fh.write("x")
            os._exit(3)

    df = spark.range(0, 160_000, numPartitions=2).selectExpr("id", "repeat('y', 100) as pad")  # ~10 MiB each
    manifest = write_partitions(df, "died", config=cfg, _task_hook=die_once, transport="spool")
    assert open(marker).read() == "x" and manifest.rows == 160_000
    assert min(o.bytes for o in manifest.objects) > 8 * 1024 * 1024
    assert not spool_files(spark)
    client = seaweed.boto3_client()
    bucket = open_multicloud(cfg).provider("S3").bucket
    assert not client.list_multipart_uploads(Bucket=bucket, Prefix="died/").get("Uploads")


def test_without_the_jvm_writer_auto_uses_frames_and_spool_refuses(spark, tmp_path, monkeypatch, caplog):
    """Where the driver cannot compile the JVM side (no Janino, a refused jar): transport="spool" fails
    before claiming anything, "auto" warns once and sends rows one by one."""
    from ml_analytics.spark import spool

    sc = spark.sparkContext
    monkeypatch.setattr(sc, "_ml_analytics_spool", None, raising=False)
    monkeypatch.setattr(sc, "_ml_analytics_framed_warned", False, raising=False)
    monkeypatch.setattr(spool, "java_source", lambda: "public class Broken {")
    cfg = store_config(tmp_path, ["LOCAL"])
    df = numbers(spark, partitions=2, empty=())
    with pytest.raises(UsageError, match=r"transport='spool' is not available: cannot compile .*Janino") as info:
        write_partitions(df, "nojvm", config=cfg, transport="spool", run_id="r1")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("*.json"))  # nothing claimed
    with caplog.at_level("WARNING", logger="ml_analytics.spark.writer"):
        first = write_partitions(df, "nojvm", config=cfg)
        second = write_partitions(df, "nojvm", config=cfg)
    assert first.rows == second.rows == 1200
    assert caplog.text.count("one by one") == 1 and "Janino" in caplog.text


ZIP_RESCANS = r"""
import importlib, os, sys, time, zipfile, zipimport
archive = sys.argv[1]
def build(version):
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zpkg/__init__.py", "")
        for i in range(300):
            z.writestr(f"zpkg/m{i}.py", "")
        z.writestr(f"zpkg/v{version}.py", f"VERSION = {version}")
build(1)
sys.path.insert(0, archive)
import zpkg.v1
reads = []
original = zipimport._read_directory
zipimport._read_directory = lambda path: (reads.append(path), original(path))[1]
from ml_analytics.spark.partition import quiet_zip_rescans
quiet_zip_rescans()
quiet_zip_rescans()
for _ in range(5):
    importlib.invalidate_caches()
unchanged = len(reads)
time.sleep(0.01)
build(2)
importlib.invalidate_caches()
import zpkg.v2
print(sys.version_info[:2] in ((3, 10), (3, 11)), unchanged, len(reads) > unchanged, zpkg.v2.VERSION)
"""


def test_python_workers_stop_rereading_an_unchanged_zip_before_every_task(tmp_path):
    """Python 3.10/3.11 re-read every zip on sys.path at each importlib.invalidate_caches() (PySpark calls
    it before every task); after quiet_zip_rescans an unchanged archive is read once, a changed one again."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", ZIP_RESCANS, str(tmp_path / "pkg.zip")], capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    patched, unchanged, reread, version = out[0] == "True", int(out[1]), out[2] == "True", out[3]
    assert version == "2" and reread  # a rewritten archive is read again: its new module imports
    if patched:
        assert unchanged <= 2  # five invalidations: one read per zipimporter (the archive, its package), not 10
    else:
        assert unchanged == 0  # Python 3.12+: left as it is (its zipimporter is lazy)


def test_bad_arguments_fail_before_any_job(spark, tmp_path):
    cfg = store_config(tmp_path, ["LOCAL"])
    df = numbers(spark, n=10, partitions=1, empty=())
    with pytest.raises(UsageError, match="compression"):
        write_partitions(df, "x", config=cfg, compression="zstd")
    with pytest.raises(UsageError, match="transport must be one of auto, spool, frames"):
        write_partitions(df, "x", config=cfg, transport="arrow")
    with pytest.raises(UsageError, match=r"'\.\.'"):
        write_partitions(df, "../x", config=cfg)
    with pytest.raises(UsageError, match=r"\[S3\] endpoint_url"):
        write_partitions(df, "x", config=store_config(tmp_path, []) + "" if False else _broken_s3(tmp_path))
    assert not (tmp_path / "store").exists()


def _broken_s3(tmp_path):
    p = tmp_path / "broken.ini"
    p.write_text("[S3]\nbucket_name = b\naccess_key = a\nsecret_access_key = s\n")
    return str(p)


def test_commit_checks_every_object_against_the_store_and_drops_strays(tmp_path, seaweed):
    from ml_analytics.spark.writer import commit

    cfg = store_config(tmp_path, ["S3", "LOCAL"], seaweed)
    mc = open_multicloud(cfg)
    providers = mc.providers()
    body = b'{"a":1}\n{"a":2}\n'
    for p in providers.values():
        p.put_bytes(body, "c/run/part-00000.json")
        p.put_bytes(b'{"a":1}\n', "c/run/part-00001.json")  # a leftover no successful attempt reported
    result = {"partition": 0, "key": "c/run/part-00000.json", "bytes": len(body), "md5": hashlib.md5(body).hexdigest(),
              "rows": 2}
    short = dict(result, bytes=len(body) + 5)  # what a later, truncated write would leave: sizes differ
    with pytest.raises(SparkWriteError, match="holds 16 bytes, its task wrote 21"):
        commit(providers, "c/run", "run", [dict(short, provider=s) for s in providers], None)
    assert all(p.stat(f"c/run/{MANIFEST_NAME}") is None for p in providers.values())
    manifest = commit(providers, "c/run", "run", [dict(result, provider=s) for s in providers], None)
    assert manifest.rows == 2
    for section, objects in stored(cfg, "c/run").items():
        assert sorted(objects) == ["c/run/_manifest.json", "c/run/part-00000.json"], section
    mc.close()


# -- cleanup ------------------------------------------------------------------------------------
def test_cleanup_removes_an_unfinished_run_and_refuses_a_committed_one(spark, tmp_path, seaweed, cli):
    cfg = store_config(tmp_path, ["S3", "LOCAL"], seaweed)
    mc = open_multicloud(cfg)
    for provider in mc.providers().values():  # what a driver that died mid-run leaves behind
        provider.put_bytes(b'{"format": "ml-analytics-run/1"}\n', "jobs/run-9/_run.json")  # its claim
        provider.put_bytes(b'{"a":1}\n', "jobs/run-9/part-00000.json")
        provider.put_bytes(b'{"a":2}\n', "jobs/run-9/part-00001.json")
        provider.put_bytes(b'{"a":3}\n', "jobs/run-90/part-00000.json")  # a sibling run sharing the name's start
        provider.put_bytes(b'{"a":4}\n', "jobs/plain/report.json")  # ordinary uploads: no run
    mc.close()
    r = cli("cleanup", "--run", "jobs/plain", "--config", cfg)
    assert r.code == 2 and "jobs/plain" in r.err and "holds no write_partitions run" in r.err, r.err
    r = cli("cleanup", "--run", "jobs/run-9", "--config", cfg, "--dry-run", "--json")
    assert r.code == 0, r.err
    assert sorted(r.json["removed"]["S3"]) == ["jobs/run-9/_run.json", "jobs/run-9/part-00000.json",
                                               "jobs/run-9/part-00001.json"]
    assert len(stored(cfg, "jobs/run-9")["S3"]) == 3
    r = cli("cleanup", "--run", "jobs/run-9", "--config", cfg)
    assert r.code == 0 and "S3: removed 3 object(s)" in r.out and "LOCAL: removed 3 object(s)" in r.out
    after = stored(cfg, "jobs")
    assert all(sorted(objects) == ["jobs/plain/report.json", "jobs/run-90/part-00000.json"] for objects in after.values())

    manifest = write_partitions(numbers(spark, n=60, partitions=2, empty=()), "jobs", config=cfg)
    r = cli("cleanup", "--run", manifest.run, "--config", cfg)
    assert r.code == 2 and "is committed" in r.err and "Traceback" not in r.err
    assert len(stored(cfg, manifest.run)["S3"]) == 3
    assert cleanup(manifest.run, config=cfg, force=True)["S3"]
    assert stored(cfg, manifest.run)["S3"] == {}
    r = cli("cleanup", "--run", "/", "--config", cfg)
    assert r.code == 2 and "whole bucket" in r.err


# -- the Druid handoff ------------------------------------------------------------------------------
@pytest.fixture
def overlord(seaweed, azurite, fake_gcs):
    from druid_double import OverlordDouble

    double = OverlordDouble(s3=seaweed, azurite=azurite, gcs=fake_gcs, pending_seconds=0.1, running_seconds=0.1)
    yield double
    double.close()


def test_druid_ingests_exactly_the_manifest(spark, tmp_path, seaweed, azurite, overlord, cli):
    druid = f"[DRUID]\nbatch_url = {overlord.batch_url}\nproject_injestion_spec = {json.dumps(SPEC)}\n"
    cfg = store_config(tmp_path, ["S3", "AZURE"], seaweed, azurite, extra=druid)
    df = spark.read.json(str(EXAMPLE_DATA / "sl_projects.json")).repartition(3)
    manifest = write_partitions(df, "projects", config=cfg)
    assert manifest.rows == 300
    mc = open_multicloud(cfg)
    mc.provider("S3").put_bytes(b"not json at all\n", f"{manifest.run}/part-99999.json")  # a stray Druid must not read
    mc.close()

    outcome = ingest_manifest(manifest, spec=SPEC, config=cfg, spec_out=tmp_path / "task.json")
    assert outcome.status == "SUCCESS" and outcome.rows == outcome.expected_rows == 300
    source = overlord.submitted[-1]["spec"]["ioConfig"]["inputSource"]
    assert source["type"] == "s3" and len(source["uris"]) == 3 and all("part-9999" not in u for u in source["uris"])

    r = cli("ingest", "--manifest", manifest.uris["AZURE"], "--spec", "project_injestion_spec", "--ingest-from",
            "AZURE", "--config", cfg, "--json", "--timeout", "60")
    assert r.code == 0, r.err + r.out
    d = r.json["druid"]
    assert d["status"] == "SUCCESS" and d["rows"] == d["expected_rows"] == 300 and d["input_source"] == "azure"  # the spec's own type is kept

    r = cli("ingest", "--manifest", f"{manifest.run}/nope", "--spec", "project_injestion_spec", "--config", cfg)
    assert r.code == 2 and "Traceback" not in r.err
    r = cli("ingest", "--spec", "project_injestion_spec", "--config", cfg)
    assert r.code == 2 and "--manifest" in r.err


def test_a_run_without_manifest_cannot_be_ingested(spark, tmp_path, seaweed):
    cfg = store_config(tmp_path, ["S3"], seaweed, extra=f"[DRUID]\nproject_injestion_spec = {json.dumps(SPEC)}\n")
    mc = open_multicloud(cfg)
    s3 = mc.provider("S3")
    s3.put_bytes(b'{"a":1}\n', "half/run-1/part-00000.json")
    with pytest.raises(UsageError, match="no such manifest"):
        ingest_manifest(s3.uri(f"half/run-1/{MANIFEST_NAME}"), spec="project_injestion_spec", config=cfg)
    mc.close()
    shutil.rmtree(tmp_path / "druid-tasks", ignore_errors=True)


def test_example_job_writes_and_ingests(spark, tmp_path, seaweed, overlord, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("spark_job", EXAMPLE_DATA.parent / "spark-job" / "job.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    cfg = store_config(tmp_path, ["S3"], seaweed, extra=f"[DRUID]\nbatch_url = {overlord.batch_url}\n")
    monkeypatch.chdir(tmp_path)  # the task JSON goes to ./druid-tasks
    manifest, outcome = job.run(spark, str(EXAMPLE_DATA / "sl_projects.json"), "summaries", cfg)
    expected = job.summarise(spark.read.json(str(EXAMPLE_DATA / "sl_projects.json"))).count()
    assert manifest.rows == expected > 0 and len(manifest.objects) <= 4
    assert outcome.status == "SUCCESS" and outcome.rows == outcome.expected_rows == expected
    assert overlord.submitted[-1]["spec"]["dataSchema"]["dataSource"] == "sl-project-summary"
