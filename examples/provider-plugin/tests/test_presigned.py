"""The PRESIGNED plugin passes the same conformance suite as the built-in providers."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
from signing_service import SigningService

from ml_analytics.testing.conformance import ProviderConformance
from ml_analytics.testing.proxy import FaultProxy
from ml_analytics.testing.servers import SeaweedFS
from ml_analytics_presigned import Presigned

TOKEN = "PLANTED-signing-token-3c9d"
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def seaweed():
    server = SeaweedFS().start()
    yield server
    server.cleanup()


@pytest.fixture
def bucket(seaweed):
    return seaweed.create_bucket(f"pre-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def service(seaweed, bucket):
    svc = SigningService(seaweed.boto3_client(), bucket, TOKEN)
    yield svc
    svc.close()


class TestPresigned(ProviderConformance):
    big_size = 16 * 1024 * 1024  # single PUTs only: keep the big-file check modest
    unsupported = {"missing_bucket_provider": "the signing service signs for one bucket it knows"}

    @pytest.fixture
    def provider_through(self, seaweed, bucket):
        """The signing service signs URLs for a proxy in front of the store, so uploads pass the rule."""
        import boto3
        from botocore.config import Config

        made = []

        def make(rule):
            proxy = FaultProxy(seaweed.port, rule)
            client = boto3.client("s3", endpoint_url=proxy.endpoint, aws_access_key_id=seaweed.access_key,
                                  aws_secret_access_key=seaweed.secret_key, region_name="us-east-1",
                                  config=Config(signature_version="s3v4"))
            svc = SigningService(client, bucket, TOKEN)
            made.extend((svc, proxy))
            return Presigned(serviceUrl=svc.url, token=TOKEN, bucketName=bucket)

        yield make
        for thing in made:
            thing.close()

    @pytest.fixture
    def leftovers(self, seaweed, bucket):
        client = seaweed.boto3_client()
        return lambda: [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

    @pytest.fixture
    def provider(self, service, bucket):
        return Presigned(serviceUrl=service.url, token=TOKEN, bucketName=bucket)

    @pytest.fixture
    def read_back(self, seaweed, bucket):
        client = seaweed.boto3_client()
        return lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read()

    @pytest.fixture
    def wrong_credentials_provider(self, service, bucket):
        return Presigned(serviceUrl=service.url, token="PLANTED-wrong-token", bucketName=bucket)

    @pytest.fixture
    def corrupting_provider(self, seaweed, bucket):
        proxy = FaultProxy(seaweed.port, lambda r: ("corrupt",) if r.method == "PUT" else None)
        import boto3
        from botocore.config import Config

        through_proxy = boto3.client("s3", endpoint_url=proxy.endpoint, aws_access_key_id=seaweed.access_key,
                                     aws_secret_access_key=seaweed.secret_key, region_name="us-east-1",
                                     config=Config(signature_version="s3v4"))
        svc = SigningService(through_proxy, bucket, TOKEN)
        yield Presigned(serviceUrl=svc.url, token=TOKEN, bucketName=bucket)
        svc.close()
        proxy.close()

    @pytest.fixture
    def config_text(self, service, bucket):
        return f"[PRESIGNED]\nservice_url = {service.url}\ntoken = {TOKEN}\nbucket_name = {bucket}\n"


def _cli(*args, cwd):
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "ml_analytics", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_listed_checked_and_used_by_the_cli(service, bucket, seaweed, tmp_path):
    code, out, err = _cli("providers", "--json", cwd=tmp_path)
    doc = {p["section"]: p for p in json.loads(out)["providers"]}
    assert doc["PRESIGNED"]["origin"] == "plugin ml_analytics_presigned:Presigned"
    assert {k["name"] for k in doc["PRESIGNED"]["keys"]} == {"service_url", "token", "bucket_name", "timeout"}
    cfg = tmp_path / "config.ini"
    cfg.write_text(f"[PRESIGNED]\nservice_url = {service.url}\ntoken = {TOKEN}\nbucket_name = {bucket}\n")
    cfg.chmod(0o600)
    code, out, err = _cli("check", "--config", cfg, cwd=tmp_path)
    assert code == 0 and "ok    [PRESIGNED]" in out, err
    missing = tmp_path / "missing.ini"
    missing.write_text(f"[PRESIGNED]\nservice_url = {service.url}\nbucket_name = {bucket}\n")
    code, out, err = _cli("check", "--config", missing, cwd=tmp_path)
    assert code == 2 and "[PRESIGNED] token: required key is missing" in err
    data = REPO / "examples" / "data"
    code, out, err = _cli("upload", data, "--prefix", "projects/", "--config", cfg, "--json", cwd=tmp_path)
    assert code == 0, err
    s3 = seaweed.boto3_client()
    for res in json.loads(out)["results"]:
        rel = res["key"][len("projects/"):]
        assert s3.get_object(Bucket=bucket, Key=res["key"])["Body"].read() == (data / rel).read_bytes()
    assert TOKEN not in out + err


def test_druid_reads_presigned_urls_through_http_input_source(service, bucket, seaweed, tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    from druid_double import OverlordDouble

    double = OverlordDouble(s3=seaweed, pending_seconds=0.05, running_seconds=0.05)
    try:
        cfg = tmp_path / "config.ini"
        cfg.write_text(f"[PRESIGNED]\nservice_url = {service.url}\ntoken = {TOKEN}\nbucket_name = {bucket}\n"
                       f"[DRUID]\nbatch_url = {double.batch_url}\n")
        cfg.chmod(0o600)
        spec = REPO / "examples" / "specs" / "sl-project.json"
        code, out, err = _cli("push", REPO / "examples" / "data" / "sl_projects.json", "--prefix", "p",
                              "--spec", spec, "--config", cfg, "--json", cwd=tmp_path)
        assert code == 0, err
        d = json.loads(out)["druid"]
        assert d["status"] == "SUCCESS" and d["rows"] == 300 and d["input_source"] == "http"
        assert double.submitted[-1]["spec"]["ioConfig"]["inputSource"]["uris"][0].startswith(seaweed.endpoint)
    finally:
        double.close()
