"""The transfer engine's behaviour (not its speed): bounds, skip-unchanged, aborts, fan-out, progress."""

from __future__ import annotations

import os
import threading
import time

import pytest
from conftest import EXAMPLE_DATA, fresh_name

from ml_analytics.cloud_storage.base import CloudProvider, StoredObject
from ml_analytics.cloud_storage.local import Local
from ml_analytics.cloud_storage.s3 import S3
from ml_analytics.errors import NetworkError
from ml_analytics.retry import RetryPolicy
from ml_analytics.testing.proxy import FaultProxy
from ml_analytics.transfer import TransferEngine, plan_uploads

FAST_FAIL = RetryPolicy(max_retries=1, initial_backoff=0.01, max_backoff=0.05, total_timeout=5)


class SlowRecorder(CloudProvider):
    """A fake provider that holds each buffer for a while and records what was in flight at once."""

    section = "SLOW"

    def __init__(self, delay=0.02, fail=False):
        self.bucket = "slow"
        self.delay, self.fail = delay, fail
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0
        self.held = self.max_held = 0
        self.keys = []

    def _enter(self, n):
        with self.lock:
            self.in_flight += 1
            self.held += n
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.max_held = max(self.max_held, self.held)

    def _leave(self, n, key):
        with self.lock:
            self.in_flight -= 1
            self.held -= n
            self.keys.append(key)

    def put_bytes(self, data, key, md5=None):
        self._enter(len(data))
        try:
            time.sleep(self.delay)
            if self.fail:
                raise RuntimeError("PLANTED failure")
            return StoredObject(self.section, key, self.uri(key), len(data), md5)
        finally:
            self._leave(len(data), key)

    def uri(self, key):
        return f"slow://{key}"


@pytest.fixture
def many_files(tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(60):
        (d / f"f{i:03d}.json").write_bytes(os.urandom(100 * 1024))
    return plan_uploads([d], "p")


@pytest.mark.parametrize("bound", [3, 7])
def test_concurrency_bound_is_respected(many_files, bound):
    provider = SlowRecorder()
    results = TransferEngine({"SLOW": provider}, concurrency=bound).run(many_files)
    assert [r.status for r in results] == ["uploaded"] * len(many_files)
    assert provider.max_in_flight == bound  # reached, never exceeded


def test_without_a_bound_each_provider_runs_its_own_default(many_files):
    wide, narrow = SlowRecorder(), SlowRecorder()
    wide.default_concurrency = 12
    TransferEngine({"WIDE": wide, "NARROW": narrow}).run(many_files)
    assert wide.max_in_flight == 12
    assert narrow.max_in_flight == CloudProvider.default_concurrency == 16


def test_memory_cap_is_respected(many_files):
    provider = SlowRecorder()
    limit = 1024 * 1024  # ten 100 KiB files fit, not the 40 that concurrency would allow
    engine = TransferEngine({"SLOW": provider}, concurrency=40, memory_limit=limit)
    engine.run(many_files)
    assert provider.max_held <= limit
    assert engine.budgets["SLOW"].peak <= limit
    assert provider.max_in_flight >= 5  # the cap limits, it does not serialise


def test_part_buffers_are_shrunk_to_fit_the_cap(seaweed):
    s3 = S3(accessKey=seaweed.access_key, secretAccessKey=seaweed.secret_key, bucketName="test",
            endpoint_url=seaweed.endpoint, partSizeMiB=16, partConcurrency=8)
    engine = TransferEngine({"S3": s3}, memory_limit=64 * 1024 * 1024)
    assert s3.buffer_bytes(10 ** 9, engine.parts_in_flight["S3"]) <= 64 * 1024 * 1024
    assert s3.default_part_concurrency == 8  # per run, passed to each upload: the provider is not changed


def test_fan_out_with_one_provider_failing_completes_the_others(many_files, tmp_path):
    good, bad = SlowRecorder(delay=0.001), SlowRecorder(delay=0.001, fail=True)
    local = Local(root=str(tmp_path / "store"))
    results = TransferEngine({"GOOD": good, "BAD": bad, "LOCAL": local}).run(many_files)
    by = {}
    for r in results:
        by.setdefault(r.provider, set()).add(r.status)
    assert by == {"GOOD": {"uploaded"}, "BAD": {"failed"}, "LOCAL": {"uploaded"}}
    assert all("PLANTED failure" in r.error for r in results if r.provider == "BAD")
    assert len(list(local.list("p"))) == len(many_files)


def test_a_slow_provider_does_not_stall_the_others(many_files):
    slow, fast = SlowRecorder(delay=0.2), SlowRecorder(delay=0.0)
    done_at = {}
    start = time.monotonic()

    def on_result(provider, result):
        done_at.setdefault(provider, []).append(time.monotonic() - start)

    TransferEngine({"SLOW": slow, "FAST": fast}, concurrency=2).run(many_files, on_result=on_result)
    assert max(done_at["FAST"]) < min(sorted(done_at["SLOW"])[-1], 2.0)
    assert max(done_at["SLOW"]) > 5 * max(done_at["FAST"])


def test_fan_out_reads_each_small_file_once(many_files, monkeypatch):
    import ml_analytics.source as source

    reads = []
    real = source.read_small
    monkeypatch.setattr(source, "read_small", lambda p, n: reads.append(p) or real(p, n))
    TransferEngine({"A": SlowRecorder(0.001), "B": SlowRecorder(0.001), "C": SlowRecorder(0.001)}) \
        .run(many_files)
    assert len(reads) == len(many_files)


def test_progress_counts_every_byte_for_every_provider(many_files):
    seen = []
    TransferEngine({"A": SlowRecorder(0.0), "B": SlowRecorder(0.0)}, on_bytes=seen.append).run(many_files)
    assert sum(seen) == 2 * sum(p.size for p in many_files)


class Unreachable(SlowRecorder):
    """Fails every upload the way a store that is down does (after its retries), or every other one."""

    def __init__(self, every_other=False):
        super().__init__(delay=0.001)
        self.every_other, self.calls = every_other, 0

    def put_bytes(self, data, key, md5=None):
        with self.lock:
            self.calls += 1
            n = self.calls
        if not self.every_other or n % 2:
            time.sleep(self.delay)
            raise NetworkError("cannot reach http://127.0.0.1:9 (connection refused)", provider="DOWN")
        return super().put_bytes(data, key, md5)


def test_a_store_that_is_down_fails_the_rest_of_its_lane_at_once(many_files, tmp_path):
    down = Unreachable()
    local = Local(root=str(tmp_path / "store"))
    results = TransferEngine({"DOWN": down, "LOCAL": local}, concurrency=4).run(many_files)
    threshold = 16  # max(16, 2 x concurrency)
    assert threshold <= down.calls <= threshold + 4  # then the breaker opened; at most a wave in flight
    failed = [r for r in results if r.provider == "DOWN"]
    assert [r.status for r in failed] == ["failed"] * len(many_files)
    skipped = [r.error for r in failed if "not attempted" in r.error]
    assert len(skipped) == len(many_files) - down.calls
    assert "the store looks down" in skipped[0] and "cannot reach http://127.0.0.1:9" in skipped[0]
    assert "--skip-existing" in skipped[0]
    assert {r.status for r in results if r.provider == "LOCAL"} == {"uploaded"}  # the other lane is untouched


def test_failures_between_successes_never_open_the_breaker(many_files):
    flaky = Unreachable(every_other=True)
    engine = TransferEngine({"FLAKY": flaky}, concurrency=4)
    results = engine.run(many_files)
    n = len(many_files)
    # every file was attempted, and the half that failed transiently got a second pass at the end
    assert flaky.calls == n + n // 2
    assert engine.second_pass == {"FLAKY": n // 2} and engine.recovered == {"FLAKY": n // 4}
    assert len(results) == n and sum(r.status == "uploaded" for r in results) == n // 2 + n // 4
    assert not any("not attempted" in (r.error or "") for r in results)


def test_definite_refusals_do_not_open_the_breaker(many_files):
    refusing = SlowRecorder(delay=0.001, fail=True)  # an error that is not retryable: the store answered
    TransferEngine({"REFUSING": refusing}, concurrency=4).run(many_files)
    assert len(refusing.keys) == len(many_files)


# -- against SeaweedFS -----------------------------------------------------------------------------
def _s3(seaweed, bucket, endpoint=None, **kw):
    return S3(accessKey=seaweed.access_key, secretAccessKey=seaweed.secret_key, regionName="us-east-1",
              bucketName=bucket, endpoint_url=endpoint or seaweed.endpoint, retry=FAST_FAIL, **kw)


def test_skip_unchanged_uploads_nothing_the_second_time(cli, seaweed, tmp_path):
    bucket = seaweed.create_bucket(fresh_name("sync"))
    data = tmp_path / "data"
    data.mkdir()
    for f in [*EXAMPLE_DATA.glob("*.json"), EXAMPLE_DATA.parent / "observations" / "observation_status.json"]:
        (data / f.name).write_bytes(f.read_bytes())
    (data / "big.bin").write_bytes(os.urandom(12 * 1024 * 1024))  # multipart: compared by multipart ETag
    cfg = tmp_path / "c.ini"
    cfg.write_text(f"[S3]\nendpoint_url = {seaweed.endpoint}\naccess_key = {seaweed.access_key}\n"
                   f"secret_access_key = {seaweed.secret_key}\nbucket_name = {bucket}\npart_size_mib = 5\n"
                   f"[LOCAL]\nroot = {tmp_path / 'store'}\n")
    cfg.chmod(0o600)
    first = cli("upload", data, "--prefix", "r", "--config", cfg, "--skip-existing", "--json")
    assert first.code == 0, [r["error"] for r in first.json["results"] if r["error"]]
    assert first.json["summary"]["uploaded"] == 6 and first.json["summary"]["skipped"] == 0
    second = cli("upload", data, "--prefix", "r", "--config", cfg, "--skip-existing", "--json")
    assert second.json["summary"] == {"uploaded": 0, "skipped": 6, "failed": 0, "bytes_uploaded": 0}
    (data / "sl_projects.json").write_bytes((data / "sl_projects.json").read_bytes().replace(b"Karnataka", b"KARNATAKA"))
    third = cli("upload", data, "--prefix", "r", "--config", cfg, "--sync", "--json")
    changed = {(r["provider"], r["key"]) for r in third.json["results"] if r["status"] == "uploaded"}
    assert changed == {("S3", "r/sl_projects.json"), ("LOCAL", "r/sl_projects.json")}
    human = cli("upload", data, "--prefix", "r", "--config", cfg, "--skip-existing")
    assert "0 uploaded" in human.out and "6 skipped" in human.out.replace("6 skipped", "6 skipped")


def _open_uploads(seaweed, bucket):
    return seaweed.boto3_client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def test_failed_multipart_upload_is_aborted(seaweed, tmp_path):
    bucket = seaweed.create_bucket(fresh_name("abort"))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(12 * 1024 * 1024))
    proxy = FaultProxy(seaweed.port, lambda r: ("status", 500, b"<Error><Code>InternalError</Code></Error>")
                       if r.method == "PUT" and "partNumber=2" in r.target else None)
    try:
        s3 = _s3(seaweed, bucket, endpoint=proxy.endpoint, partSizeMiB=5)
        results = TransferEngine({"S3": s3}).run(plan_uploads([big], "p"))
    finally:
        proxy.close()
    assert results[0].status == "failed" and "InternalError" in results[0].error
    assert any(r.method == "DELETE" and "uploadId=" in r.target for r in proxy.requests)
    assert _open_uploads(seaweed, bucket) == []
    assert seaweed.boto3_client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_file_changing_during_multipart_keeps_the_previous_version(seaweed, tmp_path, monkeypatch):
    bucket = seaweed.create_bucket(fresh_name("torn"))
    big = tmp_path / "big.bin"
    original = os.urandom(11 * 1024 * 1024)
    big.write_bytes(original)
    s3 = _s3(seaweed, bucket, partSizeMiB=5)
    s3.put_file(big, "p/big.bin")
    big.write_bytes(os.urandom(11 * 1024 * 1024))
    import ml_analytics.source as source

    real = source.SourceFile.chunks

    def append_midway(self, size=source.READ_BLOCK):
        for i, block in enumerate(real(self, size)):
            if i == 1:
                with open(big, "ab") as fh:
                    fh.write(b"late rows\n")
            yield block

    monkeypatch.setattr(source.SourceFile, "chunks", append_midway)
    result = TransferEngine({"S3": s3}).run(plan_uploads([big], "p"))[0]
    assert result.status == "failed" and ("changed" in result.error or "grew" in result.error)
    assert _open_uploads(seaweed, bucket) == []
    stored = seaweed.boto3_client().get_object(Bucket=bucket, Key="p/big.bin")["Body"].read()
    assert stored == original


def test_progress_bar_only_on_a_terminal(tmp_path):
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "ml_analytics", "upload", str(EXAMPLE_DATA)], cwd=tmp_path,
                            stdout=slave, stderr=slave, env=dict(os.environ, COLUMNS="120"))
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait()
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0 and "uploading" in text and "done: 3 files" in text
    piped = subprocess.run([sys.executable, "-m", "ml_analytics", "upload", str(EXAMPLE_DATA)], cwd=tmp_path,
                           capture_output=True, text=True)
    assert "uploading" not in piped.stdout + piped.stderr


def _recording_proxy(port: int) -> tuple[FaultProxy, list]:
    """A proxy in front of a store that records (method, target) of every request it passes on."""
    requests: list = []
    return FaultProxy(port, lambda req: requests.append((req.method, req.target))), requests


def test_skip_existing_decides_from_listings_not_a_request_per_file(cli, seaweed, tmp_path):
    bucket = seaweed.create_bucket(fresh_name("list"))
    data = tmp_path / "data"
    for sub in ("a", "b/c"):
        (data / sub).mkdir(parents=True)
        for i in range(150):
            (data / sub / f"r{i:03d}.json").write_text(f'{{"row": {i}}}\n')
    (data / "a" / "r000.json").write_text("changed after the first run\n")
    proxy, requests = _recording_proxy(seaweed.port)
    with proxy:
        cfg = tmp_path / "c.ini"
        cfg.write_text(f"[S3]\nendpoint_url = {proxy.endpoint}\naccess_key = {seaweed.access_key}\n"
                       f"secret_access_key = {seaweed.secret_key}\nbucket_name = {bucket}\n")
        first = cli("upload", data, "--prefix", "p", "--config", cfg, "--json")
        assert first.code == 0
        (data / "a" / "r001.json").write_text("changed after the first run\n")
        requests.clear()
        again = cli("upload", data, "--prefix", "p", "--config", cfg, "--json", "--skip-existing")
    assert again.code == 0, again.err
    statuses = {r["key"]: r["status"] for r in again.json["results"]}
    assert statuses.pop("p/a/r001.json") == "uploaded"
    assert set(statuses.values()) == {"skipped"} and len(statuses) == 299
    methods = [m for m, _ in requests]
    assert methods.count("HEAD") == 0 and methods.count("PUT") == 1
    assert 1 <= methods.count("GET") <= 4  # a listing of p/a/ and of p/b/c/ (paged by 1000)


def test_azure_skip_existing_compares_big_blobs_by_their_crc64_from_the_listing(cli, azurite, tmp_path):
    """A blob sent in blocks has no Content-MD5 unless asked for; its CRC64 (metadata) comes with the
    listing, so an unchanged big file is skipped without a HEAD, a same-size change is sent again."""
    from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY

    container = azurite.create_container(fresh_name("crc"))
    data = tmp_path / "data"
    data.mkdir()
    big = data / "big.bin"
    big.write_bytes(os.urandom(40 * 1024 * 1024))
    (data / "small.json").write_text('{"row": 1}\n')
    proxy, requests = _recording_proxy(azurite.port)
    with proxy:
        cfg = tmp_path / "c.ini"
        cfg.write_text(f"[AZURE]\naccount_name = {AZURITE_ACCOUNT}\ncontainer_name = {container}\n"
                       f"account_key = {AZURITE_KEY}\nendpoint_url = {proxy.endpoint}/{AZURITE_ACCOUNT}\n")
        cfg.chmod(0o600)
        first = cli("upload", data, "--prefix", "p", "--config", cfg, "--json")
        assert first.code == 0, first.err
        requests.clear()
        again = cli("upload", data, "--prefix", "p", "--config", cfg, "--json", "--skip-existing")
        assert again.code == 0 and {r["status"] for r in again.json["results"]} == {"skipped"}
        assert [m for m, _ in requests] == ["GET"]  # one listing, nothing else
        with open(big, "r+b") as fh:  # same size, one byte different
            fh.seek(20 * 1024 * 1024)
            byte = fh.read(1)
            fh.seek(-1, 1)
            fh.write(bytes([byte[0] ^ 1]))
        third = cli("upload", data, "--prefix", "p", "--config", cfg, "--json", "--skip-existing")
    statuses = {r["key"]: r["status"] for r in third.json["results"]}
    assert statuses == {"p/big.bin": "uploaded", "p/small.json": "skipped"}
    stored = azurite.service_client().get_container_client(container).download_blob("p/big.bin").readall()
    assert stored == big.read_bytes()


def test_local_skip_existing_never_rereads_stored_objects(tmp_path):
    from ml_analytics.sync import StoreIndex

    store = Local(root=str(tmp_path / "s"), bucketName="b")
    f = tmp_path / "r.json"
    f.write_text('{"row": 1}\n')
    store.put_file(f, "p/r.json")
    stored = tmp_path / "s" / "b" / "p" / "r.json"
    st = stored.stat()
    stored.write_text('{"row": 9}\n')  # same size; mtime put back: only a re-read could notice
    os.utime(stored, ns=(st.st_atime_ns, st.st_mtime_ns))
    plan = plan_uploads([f], "p")
    assert StoreIndex(store, plan).unchanged(plan[0])  # decided from the recorded MD5, not the content
    os.utime(stored, None)  # a real later change moves the mtime: then the content is hashed again
    assert not StoreIndex(store, plan).unchanged(plan[0])
