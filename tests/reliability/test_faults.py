"""Uploads through a fault-injecting proxy in front of the real servers: nothing lost, nothing partial.

Each case uploads the example reports plus one file big enough for multipart / block / resumable
uploads, through a schedule of faults, then checks with the cloud's own SDK that every object is
byte-identical, that no other keys appeared, that no multipart upload or uncommitted block was
left behind, and that the report tells the truth.
"""

from __future__ import annotations

import os

import pytest
from conftest import EXAMPLE_DATA, fresh_name

from ml_analytics.cloud_storage import MultiCloud
from ml_analytics.testing import faults as F
from ml_analytics.testing.proxy import FaultProxy
from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY

RETRY = "[COMMON]\nmax_retries = 8\nretry_timeout = 60\nrequest_timeout = 2\n"
BIG = {"S3": 12, "AZURE": 40, "GCP": 20}  # MiB: multipart (5 MiB parts) / staged blocks / resumable


@pytest.fixture
def dataset(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    for f in EXAMPLE_DATA.rglob("*.json"):
        dest = d / f.relative_to(EXAMPLE_DATA)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.read_bytes())
    return d


def _add_big(d, mib):
    (d / "big.bin").write_bytes(os.urandom(mib * 1024 * 1024))


def _expected(d, prefix):
    return {f"{prefix}/{p.relative_to(d).as_posix()}": p.read_bytes() for p in d.rglob("*") if p.is_file()}


class S3Target:
    section = "S3"

    def __init__(self, seaweed):
        self.server = seaweed
        self.bucket = seaweed.create_bucket(fresh_name("rel"))
        self.client = seaweed.boto3_client()

    def config(self, endpoint):
        s = self.server
        return (f"[S3]\nendpoint_url = {endpoint}\naccess_key = {s.access_key}\nsecret_access_key = {s.secret_key}\n"
                f"bucket_name = {self.bucket}\npart_size_mib = 5\n")

    def objects(self):
        keys = [o["Key"] for o in self.client.list_objects_v2(Bucket=self.bucket).get("Contents", [])]
        return {k: self.client.get_object(Bucket=self.bucket, Key=k)["Body"].read() for k in keys}

    def leftovers(self):
        return [u["Key"] for u in self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])]


class AzureTarget:
    section = "AZURE"

    def __init__(self, azurite):
        self.server = azurite
        self.bucket = azurite.create_container(fresh_name("rel"))
        self.client = azurite.service_client().get_container_client(self.bucket)

    def config(self, endpoint):
        return (f"[AZURE]\naccount_name = {AZURITE_ACCOUNT}\ncontainer_name = {self.bucket}\n"
                f"account_key = {AZURITE_KEY}\nendpoint_url = {endpoint}/{AZURITE_ACCOUNT}\n")

    def objects(self):
        return {b.name: self.client.download_blob(b.name).readall() for b in self.client.list_blobs()}

    def leftovers(self):
        names = {b.name for b in self.client.list_blobs(include=["uncommittedblobs"])}
        return [n for n in names if self.client.get_blob_client(n).get_block_list("uncommitted")[1]]


class GCSTarget:
    section = "GCP"

    def __init__(self, fake_gcs):
        self.server = fake_gcs
        self.bucket = fake_gcs.create_bucket(fresh_name("rel"))
        self.client = fake_gcs.client().bucket(self.bucket)

    def config(self, endpoint):
        return f"[GCP]\nbucket_name = {self.bucket}\nendpoint_url = {endpoint}\n"

    def objects(self):
        return {b.name: b.download_as_bytes() for b in self.server.client().list_blobs(self.bucket)}

    def leftovers(self):
        return []  # resumable sessions are not objects; nothing is visible until the final chunk


S3_CASES = {
    "500 every 3rd request": F.every(3, F.S3_INTERNAL),
    "SlowDown burst of 4": F.burst(1, 4, F.S3_SLOWDOWN),
    "30% of writes fail, seed 7": F.fraction(0.3, F.S3_INTERNAL, seed=7, when=F.writes),
    "reset before the body, every 4th": F.every(4, F.RESET_BEFORE),
    "reset during the body, every 4th write": F.every(4, F.RESET_DURING, when=F.writes),
    "reset after the body (answer lost), every 4th write": F.every(4, F.RESET_AFTER, when=F.writes),
    "stall longer than the timeout": F.first(("stall", 4), when=F.writes),
    "200 with an error body on CompleteMultipartUpload": F.first(F.S3_COMPLETE_200_ERROR, when=F.s3_complete_multipart),
    "stored, then 500, every 3rd write": F.every(3, F.ACTED_THEN_500, when=F.writes),
    "CreateMultipartUpload stored, answer lost": F.first(F.ACTED_THEN_500, when=F.s3_create_multipart),
}
AZURE_CASES = {
    "ServerBusy burst of 4": F.burst(1, 4, F.AZURE_SERVER_BUSY),
    "reset before the body, every 4th": F.every(4, F.RESET_BEFORE),
    "reset during the body, every 5th write": F.every(5, F.RESET_DURING, when=F.writes),
    "reset after the body (answer lost), every 4th write": F.every(4, F.RESET_AFTER, when=F.writes),
    "stored, then 500, every 3rd write": F.every(3, F.ACTED_THEN_500, when=F.writes),
    "stall longer than the timeout": F.first(("stall", 4), when=F.writes),
}
def _gcs_single_request(req):
    return req.method == "POST" and "uploadType=multipart" in req.target


def _gcs_final_chunk(req):
    """The last PUT of a resumable session (Content-Range: bytes A-B/TOTAL with B + 1 == TOTAL)."""
    rng = req.headers.get("content-range", "")
    if req.method != "PUT" or "upload_id=" not in req.target or "/" not in rng or "-" not in rng:
        return False
    span, total = rng.split(" ", 1)[-1].split("/")
    return total.isdigit() and int(span.split("-")[1]) + 1 == int(total)


# fake-gcs-server does not implement resumable-session recovery (a chunk re-sent after a lost answer
# gets 404 where GCS answers 308 with the committed range), so lost answers are injected on single
# requests and on a session's last chunk only.
GCS_CASES = {
    "429 burst of 3": F.burst(1, 3, F.GCS_TOO_MANY),
    "503 every 3rd request": F.every(3, F.HTTP_503),
    "reset before the body, every 4th": F.every(4, F.RESET_BEFORE),
    "stored, then 500, every 2nd single-request upload": F.every(2, F.ACTED_THEN_500, when=_gcs_single_request),
    "last resumable chunk stored, answer lost": F.first(F.ACTED_THEN_500, when=_gcs_final_chunk),
}
CASES = [("S3", n, r) for n, r in S3_CASES.items()] + [("AZURE", n, r) for n, r in AZURE_CASES.items()] + \
        [("GCP", n, r) for n, r in GCS_CASES.items()]


@pytest.fixture
def target_for(seaweed, azurite, fake_gcs):
    return {"S3": lambda: S3Target(seaweed), "AZURE": lambda: AzureTarget(azurite),
            "GCP": lambda: GCSTarget(fake_gcs)}


def _upload_through(target, rule, folder, prefix, tmp_path, common=""):
    """Upload ``folder`` to the target through a FaultProxy with ``rule``; (results, faults injected)."""
    counted = F.Counted(rule)
    proxy = FaultProxy(target.server.port, counted)
    try:
        cfg = tmp_path / "c.ini"
        cfg.write_text(common + target.config(proxy.endpoint))
        with MultiCloud(cfg) as mc:
            return mc.upload([folder], prefix), counted.fired
    finally:
        proxy.close()


@pytest.mark.parametrize("section,case,rule", CASES, ids=[f"{s}: {n}" for s, n, _ in CASES])
def test_faults_lose_nothing_and_leave_nothing(section, case, rule, target_for, dataset, tmp_path):
    target = target_for[section]()
    _add_big(dataset, BIG[section])
    results, fired = _upload_through(target, rule, dataset, "reports", tmp_path, common=RETRY)
    expected = _expected(dataset, "reports")
    assert {r.key: r.status for r in results} == {k: "uploaded" for k in expected}, \
        [(r.key, r.error) for r in results if r.status != "uploaded"]
    stored = target.objects()
    assert set(stored) == set(expected)  # nothing missing, no duplicates under other keys
    for key, data in expected.items():
        assert stored[key] == data, key
    assert target.leftovers() == []
    assert fired, "the schedule never injected a fault"


def test_failure_after_all_retries_is_reported_and_the_rest_uploaded(cli, seaweed, dataset, tmp_path):
    target = S3Target(seaweed)
    proxy = FaultProxy(seaweed.port, F.always(F.S3_SLOWDOWN, when=lambda r: "sl_projects_6013eb9d" in r.target))
    try:
        cfg = tmp_path / "c.ini"
        cfg.write_text("[COMMON]\nmax_retries = 2\nretry_timeout = 5\n" + target.config(proxy.endpoint))
        cfg.chmod(0o600)
        r = cli("upload", dataset, "--prefix", "reports", "--config", cfg, "--json")
    finally:
        proxy.close()
    assert r.code == 1 and r.json["ok"] is False
    by = {x["key"]: x for x in r.json["results"]}
    throttled = "reports/programs/sl_projects_6013eb9d0a0fe3e2d5a5a0b1.json"
    assert by[throttled]["status"] == "failed"
    assert "SlowDown" in by[throttled]["error"]
    assert {k for k, v in by.items() if v["status"] == "uploaded"} == set(target.objects())
    assert len(target.objects()) == len(by) - 1
    assert target.leftovers() == []


def test_azure_failed_block_upload_leaves_no_uncommitted_blocks(azurite, dataset, tmp_path):
    target = AzureTarget(azurite)
    _add_big(dataset, 40)
    block_puts = F.always(F.AZURE_SERVER_BUSY, when=lambda r: "comp=block" in r.target and "blockid=" in r.target
                          and r.index > 3)
    proxy = FaultProxy(azurite.port, block_puts)
    try:
        cfg = tmp_path / "c.ini"
        cfg.write_text("[COMMON]\nmax_retries = 1\nretry_timeout = 5\n" + target.config(proxy.endpoint))
        with MultiCloud(cfg) as mc:
            results = mc.upload([dataset / "big.bin"], "reports")
    finally:
        proxy.close()
    assert results[0].status == "failed"
    assert target.leftovers() == [] and target.objects() == {}


FLAKY = F.combine(F.every(5, F.HTTP_503), F.every(7, F.RESET_BEFORE), F.every(11, F.ACTED_THEN_500))


@pytest.mark.parametrize("section", ["S3", "AZURE", "GCP"])
def test_a_batch_survives_a_flaky_store_on_default_retry_settings(section, target_for, tmp_path):
    """503 to every 5th request, a reset every 7th, the answer lost after the store acted every 11th:
    about 38 % of requests faulted. Every one of 300 small files must be stored, byte for byte."""
    target = target_for[section]()
    d = tmp_path / "many"
    d.mkdir()
    for i in range(300):
        (d / f"r{i:03d}.json").write_text(f'{{"row": {i}}}\n' * (1 + i % 7))
    results, fired = _upload_through(target, FLAKY, d, "flaky", tmp_path)
    assert [r.key for r in results if r.status != "uploaded"] == []
    stored = target.objects()
    expected = _expected(d, "flaky")
    assert set(stored) == set(expected) and all(stored[k] == v for k, v in expected.items())
    assert len(fired) > 100


@pytest.mark.parametrize("fault", ["stalled", "refused"])
def test_waits_on_a_dead_or_stalled_s3_store_obey_common(fault, seaweed, cli, tmp_path):
    """request_timeout = 5, max_retries = 2, retry_timeout = 20: a multipart-sized upload ends within
    retry_timeout plus one request_timeout per attempt (35 s; it took 256 s when the orphan sweep's
    own client ignored [COMMON])."""
    import time

    bucket = seaweed.create_bucket(fresh_name("stall"))
    (tmp_path / "big.bin").write_bytes(os.urandom(12 * 1024 * 1024))
    proxy = FaultProxy(seaweed.port, F.always(("stall", 120))) if fault == "stalled" else None
    endpoint = proxy.endpoint if proxy else "http://127.0.0.1:9"
    try:
        cfg = tmp_path / "c.ini"
        cfg.write_text("[COMMON]\nrequest_timeout = 5\nmax_retries = 2\nretry_timeout = 20\nconnect_timeout = 2\n"
                       f"[S3]\nendpoint_url = {endpoint}\naccess_key = {seaweed.access_key}\n"
                       f"secret_access_key = {seaweed.secret_key}\nbucket_name = {bucket}\n")
        started = time.monotonic()
        r = cli("upload", tmp_path / "big.bin", "--config", cfg, timeout=120)
        took = time.monotonic() - started
    finally:
        if proxy:
            proxy.close()
    assert r.code == 1 and "Traceback" not in r.err
    assert took < 20 + 5 * 3 + 10, f"took {took:.0f} s"  # the bound, plus start-up slack
