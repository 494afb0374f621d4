"""The store dies mid-batch; two uploads race. Nothing lost, nothing partial, the truth reported."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import run_cli

from ml_analytics.testing.servers import SeaweedFS


def _small_files(d, n=400):
    d.mkdir()
    for i in range(n):
        (d / f"r{i:04d}.json").write_text(f'{{"row": {i}}}\n' * 50)
    return d


def _config(tmp_path, server, bucket="test"):
    cfg = tmp_path / "c.ini"
    cfg.write_text("[COMMON]\nmax_retries = 1\nretry_timeout = 3\nconnect_timeout = 1\nrequest_timeout = 5\n"
                   "concurrency = 4\n"
                   f"[S3]\nendpoint_url = {server.endpoint}\naccess_key = {server.access_key}\n"
                   f"secret_access_key = {server.secret_key}\nbucket_name = {bucket}\n"
                   f"[LOCAL]\nroot = {tmp_path / 'store'}\n")
    cfg.chmod(0o600)
    return cfg


def _stored(server, bucket="test"):
    client = server.boto3_client()
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return {k: _read(client, bucket, k) for k in keys}


def _read(client, bucket, key, patience=20.0):
    """GetObject, waiting out the InternalError a freshly restarted SeaweedFS answers while it loads
    its volumes (the store's own start-up, not this project's doing)."""
    from botocore.exceptions import ClientError

    deadline = time.time() + patience
    while True:
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "InternalError" or time.time() > deadline:
                raise
            time.sleep(0.5)


def test_server_killed_mid_batch_then_rerun_uploads_only_what_is_missing(tmp_path):
    n = 600  # enough that the batch is still running when the store dies
    data = _small_files(tmp_path / "data", n)
    for i in range(3):  # multipart uploads in flight when the store dies: orphans the re-run must abort
        (data / f"big{i}.bin").write_bytes(bytes([i]) * (20 * 1024 * 1024))
    n += 3
    server = SeaweedFS(workdir=tmp_path / "weed").start()
    try:
        cfg = _config(tmp_path, server)
        client = server.boto3_client()  # ready before the upload starts: building it takes longer than the batch
        proc = subprocess.Popen([sys.executable, "-m", "ml_analytics", "upload", str(data), "--prefix", "batch",
                                 "--config", str(cfg), "--json", "--to", "S3"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline and client.list_objects_v2(Bucket="test").get("KeyCount", 0) < 40:
            time.sleep(0.02)
        server.kill()  # SIGKILL, mid-batch
        killed_at = time.monotonic()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1 and "Traceback" not in err
        import json

        first = json.loads(out)
        failed = {r["key"] for r in first["results"] if r["status"] == "failed"}
        assert failed and first["ok"] is False
        errors = [r["error"] for r in first["results"] if r["status"] == "failed"]
        assert all("cannot reach" in e or "kept failing" in e for e in errors), errors[:3]
        assert any("not attempted: the store looks down" in e for e in errors)  # not each one retried in turn

        # The killed run's open multipart uploads are provably abandoned once idle longer than a part could
        # take at these timeouts (retry_timeout + request_timeout + 5 s of clock grace): before that they
        # might be a live writer's, and a re-run leaves them alone.
        time.sleep(max(0.0, 13.5 - (time.monotonic() - killed_at)))
        server = SeaweedFS(workdir=tmp_path / "weed", port=server.port).start()  # same data, same port
        before = _stored(server)
        for key, body in before.items():  # whatever was stored is whole
            assert body == (data / key.split("/", 1)[1]).read_bytes()
        again = run_cli("upload", data, "--prefix", "batch", "--config", cfg, "--json", "--to", "S3",
                        "--skip-existing", cwd=tmp_path)
        assert again.code == 0, again.err
        summary = again.json["summary"]
        assert summary["uploaded"] == n - len(before) and summary["skipped"] == len(before)
        after = _stored(server)
        assert set(after) == {f"batch/{p.name}" for p in data.iterdir()}
        assert all(after[k] == (data / k.split("/", 1)[1]).read_bytes() for k in after)
        assert server.boto3_client().list_multipart_uploads(Bucket="test").get("Uploads") is None
    finally:
        server.cleanup()


def test_two_uploads_of_the_same_folder_at_once_end_consistent(seaweed, tmp_path):
    data = _small_files(tmp_path / "data", 200)
    (data / "big.bin").write_bytes(b"B" * (12 * 1024 * 1024))
    bucket = seaweed.create_bucket("race-" + str(int(time.time() * 1000)))
    cfg = _config(tmp_path, seaweed, bucket)
    cfg.write_text(cfg.read_text().replace("concurrency = 4", "concurrency = 16") + "part_size_mib = 5\n")
    procs = [subprocess.Popen([sys.executable, "-m", "ml_analytics", "upload", str(data), "--prefix", "same",
                               "--config", str(cfg), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    stored = _stored(seaweed, bucket)
    assert set(stored) == {f"same/{p.name}" for p in data.iterdir()}
    assert all(stored[k] == (data / k.split("/", 1)[1]).read_bytes() for k in stored)
    assert seaweed.boto3_client().list_multipart_uploads(Bucket=bucket).get("Uploads") is None
    local = tmp_path / "store" / "ml-analytics" / "same"
    assert sorted(p.name for p in local.iterdir()) == sorted(p.name for p in data.iterdir())  # no temp files
    assert all((local / p.name).read_bytes() == p.read_bytes() for p in data.iterdir())
