"""Ctrl-C and SIGTERM stop a batch at once and say what was stored; orphaned multipart uploads of
this tool's keys are aborted by the next run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import fresh_name

from ml_analytics.testing import faults as F
from ml_analytics.testing.proxy import FaultProxy


def _config(tmp_path, seaweed, bucket, endpoint=None, timeouts="retry_timeout = 10\n"):
    cfg = tmp_path / "c.ini"
    cfg.write_text(f"[COMMON]\nmax_retries = 2\n{timeouts}concurrency = 4\n"
                   f"[S3]\nendpoint_url = {endpoint or seaweed.endpoint}\naccess_key = {seaweed.access_key}\n"
                   f"secret_access_key = {seaweed.secret_key}\nbucket_name = {bucket}\npart_size_mib = 5\n")
    cfg.chmod(0o600)
    return cfg


def _open_uploads(client, bucket):
    return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def _keys(client, bucket):
    return {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_new_uploads_aborts_multipart_and_reports(tmp_path, seaweed, signum, code):
    bucket = seaweed.create_bucket(fresh_name("sig"))
    client = seaweed.boto3_client()
    data = tmp_path / "data"
    data.mkdir()
    (data / "a-big.bin").write_bytes(os.urandom(160 * 1024 * 1024))  # 32 parts: most not yet read
    for i in range(400):
        (data / f"r{i:04d}.json").write_text(f'{{"row": {i}}}\n')
    client.put_object(Bucket=bucket, Key="p/a-big.bin", Body=b"the previous version")
    slow = FaultProxy(seaweed.port, rule=F.always(("stall", 0.1)))  # every request slowed: the batch takes long
    try:
        cfg = _config(tmp_path, seaweed, bucket, endpoint=slow.endpoint)
        proc = subprocess.Popen([sys.executable, "-m", "ml_analytics", "upload", str(data), "--prefix", "p",
                                 "--config", str(cfg), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.time() + 60
        while time.time() < deadline and not _open_uploads(client, bucket):
            time.sleep(0.05)
        time.sleep(0.5)
        assert _open_uploads(client, bucket), "the big file's multipart upload never started"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        slow.close()
    assert proc.returncode == code, err
    assert "interrupted" in err and "Traceback" not in err
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["ok"] is False
    stored = _keys(client, bucket)
    uploaded = {r["key"] for r in doc["results"] if r["status"] == "uploaded"}
    not_sent = [r for r in doc["results"] if r["status"] == "failed"]
    assert uploaded <= stored and len(uploaded) < 401 and not_sent
    assert len(stored) < 401  # it stopped: not the whole batch went up
    big = next(r for r in doc["results"] if r["key"] == "p/a-big.bin")
    assert big["status"] == "failed" and "interrupted" in big["error"]
    assert client.get_object(Bucket=bucket, Key="p/a-big.bin")["Body"].read() == b"the previous version"
    assert _open_uploads(client, bucket) == []


def test_orphans_of_an_earlier_run_are_aborted_by_the_next_run_of_the_same_keys(tmp_path, seaweed, monkeypatch):
    from ml_analytics.cloud_storage import MultiCloud

    bucket = seaweed.create_bucket(fresh_name("orph"))
    client = seaweed.boto3_client()
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin").write_bytes(os.urandom(12 * 1024 * 1024))
    # what a run killed by SIGTERM / kill -9 leaves: an open upload with a part, and one with none
    for with_part in (True, False):
        upload = client.create_multipart_upload(Bucket=bucket, Key="p/big.bin")
        if with_part:
            client.upload_part(Bucket=bucket, Key="p/big.bin", UploadId=upload["UploadId"], PartNumber=1,
                               Body=os.urandom(5 * 1024 * 1024))
    other = client.create_multipart_upload(Bucket=bucket, Key="p/someone-elses.bin")  # not ours: left alone
    time.sleep(9.5)  # older than this run, idle longer than a part could take at the timeouts below
    live = client.create_multipart_upload(Bucket=bucket, Key="p/big.bin")  # another writer, sending parts now
    client.upload_part(Bucket=bucket, Key="p/big.bin", UploadId=live["UploadId"], PartNumber=1, Body=b"x" * 100)
    time.sleep(5.5)  # begun before this run (more than its 5 s grace), but its part is recent
    client.upload_part(Bucket=bucket, Key="p/big.bin", UploadId=live["UploadId"], PartNumber=2, Body=b"x" * 100)
    cfg = _config(tmp_path, seaweed, bucket, timeouts="request_timeout = 1\nretry_timeout = 3\n")
    with MultiCloud(cfg) as mc:  # abandoned: no part for longer than 1 + 3 + 5 (grace) s at these timeouts
        results = mc.upload([data], "p")
    assert [r.status for r in results] == ["uploaded"]
    left = _open_uploads(client, bucket)
    assert sorted(u["UploadId"] for u in left) == sorted([other["UploadId"], live["UploadId"]])
    assert client.get_object(Bucket=bucket, Key="p/big.bin")["Body"].read() == (data / "big.bin").read_bytes()


@pytest.mark.parametrize("section", ["AZURE", "GCP"])
def test_a_signal_mid_batch_keeps_the_previous_object_on_azure_and_gcs(tmp_path, azurite, fake_gcs, section):
    from test_faults import AzureTarget, GCSTarget

    target = AzureTarget(azurite) if section == "AZURE" else GCSTarget(fake_gcs)
    if section == "AZURE":
        target.client.upload_blob("p/a-big.bin", b"the previous version")
    else:
        target.client.blob("p/a-big.bin").upload_from_string(b"the previous version")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a-big.bin").write_bytes(os.urandom(160 * 1024 * 1024))
    for i in range(300):
        (data / f"r{i:04d}.json").write_text(f'{{"row": {i}}}\n')
    slow = FaultProxy(target.server.port, rule=F.always(("stall", 0.1)))
    try:
        cfg = tmp_path / "c.ini"
        cfg.write_text("[COMMON]\nmax_retries = 2\nretry_timeout = 10\nconcurrency = 4\n" + target.config(slow.endpoint))
        cfg.chmod(0o600)
        proc = subprocess.Popen([sys.executable, "-m", "ml_analytics", "upload", str(data), "--prefix", "p",
                                 "--config", str(cfg), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.time() + 60
        while time.time() < deadline and len(target.objects()) < 6:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    finally:
        slow.close()
    assert proc.returncode == 130, err
    doc = json.loads(out)
    assert doc["interrupted"] is True
    big = next(r for r in doc["results"] if r["key"] == "p/a-big.bin")
    stored = target.objects()
    # What the report says is what the store holds: the big file either went up whole before the
    # signal (GCS sends it in one streamed request) or not at all, the previous version kept.
    expected = (data / "a-big.bin").read_bytes() if big["status"] == "uploaded" else b"the previous version"
    assert stored["p/a-big.bin"] == expected
    assert {r["key"] for r in doc["results"] if r["status"] == "uploaded"} <= set(stored)
    assert len(stored) < 301 and target.leftovers() == []


def test_a_second_ctrl_c_ends_the_process_at_once(tmp_path, seaweed):
    """The first SIGINT asks the batch to stop and waits for uploads in flight; a second one ends the
    process at once (the default action), however long those uploads would still take."""
    bucket = seaweed.create_bucket(fresh_name("twice"))
    data = tmp_path / "data"
    data.mkdir()
    for i in range(8):
        (data / f"r{i}.json").write_text(f'{{"row": {i}}}\n')
    stuck = FaultProxy(seaweed.port, rule=F.always(("stall", 60)))  # every request hangs for a minute
    try:
        cfg = _config(tmp_path, seaweed, bucket, endpoint=stuck.endpoint)
        proc = subprocess.Popen([sys.executable, "-m", "ml_analytics", "upload", str(data), "--config", str(cfg)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline and len(stuck.requests) < 4:  # uploads are in flight, stalled
            time.sleep(0.05)
        assert stuck.requests, "no upload reached the store"
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None, "the first Ctrl-C should wait for the uploads in flight"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=40)
        assert time.monotonic() - started < 20  # at once, not after the minute-long stalls (slack for a busy CI)
        assert proc.returncode in (-signal.SIGINT, 130), proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
        stuck.close()
