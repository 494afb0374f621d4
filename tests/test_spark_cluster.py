"""write_partitions on a real Spark standalone cluster: a master and two workers (separate processes, on
127.0.0.1 and 127.0.0.2), executors in their own JVMs and Python workers, authentication and network
encryption on; SeaweedFS and a LOCAL folder as stores. One cluster for the whole test run; each test runs
its own driver program (tests/harness/spark_driver.py) in a process of its own."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import fresh_name

pytest.importorskip("pyspark")
pytestmark = pytest.mark.timeout(600)

HARNESS = Path(__file__).resolve().parent / "harness"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    sys.path.insert(0, str(HARNESS.parent))
    from harness.spark_cluster import SparkCluster

    c = SparkCluster(tmp_path_factory.mktemp("spark-cluster"), secret="PLANTED-spark-secret-" + fresh_name("s"))
    c.start()
    yield c
    c.stop()


def _config(tmp_path, seaweed, sections=("S3", "LOCAL")) -> tuple[Path, str]:
    bucket = seaweed.create_bucket(fresh_name("cl"))
    text = "[COMMON]\nmax_retries = 3\nretry_timeout = 60\n"
    if "S3" in sections:
        text += (f"[S3]\nendpoint_url = {seaweed.endpoint}\naccess_key = {seaweed.access_key}\n"
                 f"secret_access_key = {seaweed.secret_key}\nbucket_name = {bucket}\npart_size_mib = 5\n")
    if "LOCAL" in sections:
        text += f"[LOCAL]\nroot = {tmp_path / 'store'}\n"
    cfg = tmp_path / "config.ini"
    cfg.write_text(text)
    cfg.chmod(0o600)
    return cfg, bucket


def _driver(cluster, scenario, cfg, marks, *, background=False):
    marks.mkdir(exist_ok=True)
    settings = json.dumps({"conf": cluster.driver_conf(), "config": str(cfg), "marks": str(marks)})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_ANALYTICS_", "SPARK_", "PYSPARK_"))}
    env["JAVA_HOME"] = os.environ.get("JAVA_HOME") or "/usr/lib/jvm/java-17-openjdk-amd64"
    proc = subprocess.Popen([sys.executable, str(HARNESS / "spark_driver.py"), scenario, settings], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=marks)
    if background:
        return proc
    out, err = proc.communicate(timeout=500)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1]), err


def _objects(seaweed, bucket, prefix):
    client = seaweed.boto3_client()
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}


def test_two_runs_racing_for_one_run_id_exactly_one_wins(cluster, seaweed, tmp_path):
    cfg, bucket = _config(tmp_path, seaweed)
    out, err = _driver(cluster, "race", cfg, tmp_path / "marks")
    won = [r for r in out.values() if r["ok"]]
    lost = [r for r in out.values() if not r["ok"]]
    assert len(won) == 1 and len(lost) == 1, out
    assert "is taken" in lost[0]["error"] and "the-same-id" in lost[0]["error"]
    stored = _objects(seaweed, bucket, "race/the-same-id/")
    assert sorted(stored) == sorted(won[0]["keys"] + ["race/the-same-id/_manifest.json"])
    assert won[0]["rows"] == 4000
    assert "PLANTED-spark-secret" not in err


def test_a_speculative_loser_that_outlives_the_commit_changes_no_listed_object(cluster, seaweed, tmp_path):
    """Partition 1's first attempt is held back until the run is committed; Spark's speculative copy
    (on the other host, its rows carrying attempt 1) wins. The loser then uploads its own (different)
    bytes: no object the manifest lists may change."""
    cfg, bucket = _config(tmp_path, seaweed)
    marks = tmp_path / "marks"
    out, _ = _driver(cluster, "speculation", cfg, marks)
    manifest = out["manifest"]
    assert (marks / "loser-started").exists() and (marks / "uploaded-1").exists(), "no speculative copy ran"
    deadline = time.time() + 90
    while time.time() < deadline and not (marks / "uploaded-0").exists():  # the loser, after the commit
        time.sleep(0.5)
    assert (marks / "uploaded-0").exists(), "the held-back attempt never uploaded after the commit"
    time.sleep(1)
    stored = _objects(seaweed, bucket, manifest["run"] + "/")
    local = Path(tmp_path / "store" / "ml-analytics")
    for obj in manifest["objects"]:
        for body in (stored[obj["key"]], (local / obj["key"]).read_bytes()):
            assert hashlib.md5(body).hexdigest() == obj["md5"] and len(body) == obj["bytes"], obj["key"]
    part1 = next(o for o in manifest["objects"] if o["partition"] == 1)
    assert {json.loads(line)["attempt"] for line in stored[part1["key"]].splitlines()} == {1}
    strays = set(stored) - {o["key"] for o in manifest["objects"]} - {manifest["run"] + "/_manifest.json"}
    for key in strays:  # only the loser's own key, written after the commit
        assert "part-00001-" in key and {json.loads(line)["attempt"] for line in stored[key].splitlines()} == {0}


def test_a_worker_killed_mid_upload_leaves_no_open_multipart_upload(cluster, seaweed, tmp_path):
    cfg, bucket = _config(tmp_path, seaweed, sections=("S3",))
    marks = tmp_path / "marks"
    proc = _driver(cluster, "big", cfg, marks, background=True)
    client = seaweed.boto3_client()
    victim = None
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not (marks / "streaming").exists():
            time.sleep(0.2)
        assert (marks / "streaming").exists(), "the partition never started streaming"
        time.sleep(1.0)  # parts of the multipart upload are on their way
        assert client.list_multipart_uploads(Bucket=bucket).get("Uploads"), "no multipart upload was open"
        host = (marks / "streaming").read_text()
        victim = cluster.hosts.index(host)
        cluster.kill_worker(victim)
        out, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        if victim is not None:  # the next tests get their two workers back
            cluster.start_worker(victim)
    manifest = json.loads(out.strip().splitlines()[-1])["manifest"]
    assert manifest["rows"] == 300_000
    assert not client.list_multipart_uploads(Bucket=bucket, Prefix=manifest["run"] + "/").get("Uploads")
    stored = _objects(seaweed, bucket, manifest["run"] + "/")
    assert sorted(stored) == sorted([o["key"] for o in manifest["objects"]] + [manifest["run"] + "/_manifest.json"])


def test_credentials_shipped_to_a_cluster_in_clear_text_are_warned_about(caplog):
    from ml_analytics.spark.writer import warn_if_shipped_in_clear

    class Conf:
        def __init__(self, values):
            self.values = values

        def get(self, key, default=None):
            return self.values.get(key, default)

    class Context:
        def __init__(self, values):
            self.conf = Conf(values)

        def getConf(self):
            return self.conf

    class WithSecrets:
        secrets = {"PLANTED-key"}

    clear = Context({"spark.master": "spark://h:7077"})
    warn_if_shipped_in_clear(clear, WithSecrets())
    warn_if_shipped_in_clear(clear, WithSecrets())
    assert caplog.text.count("clear text") == 1 and "PLANTED-key" not in caplog.text
    caplog.clear()
    for values in ({"spark.master": "local[2]"}, {"spark.master": "spark://h:7077", "spark.authenticate": "true",
                                                  "spark.network.crypto.enabled": "true"}):
        warn_if_shipped_in_clear(Context(values), WithSecrets())
    assert "clear text" not in caplog.text
