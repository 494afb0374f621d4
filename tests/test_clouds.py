"""All five clouds at once, through the CLI, on real local servers."""

from __future__ import annotations

import json
import os

import pytest
from conftest import EXAMPLE_DATA, fresh_name

from ml_analytics.cloud_storage.aws import AWS
from ml_analytics.cloud_storage.gcp import GCP
from ml_analytics.cloud_storage.ms_azure import MSAzure
from ml_analytics.cloud_storage.oracle import Oracle
from ml_analytics.config import Config
from ml_analytics.druid.sources import input_source
from ml_analytics.errors import ConfigError
from ml_analytics.testing.proxy import FaultProxy
from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY


@pytest.fixture
def five_clouds(seaweed, azurite, fake_gcs, tmp_path):
    buckets = {s: seaweed.create_bucket(fresh_name(s.lower())) for s in ("AWS", "ORACLE", "S3")}
    container = azurite.create_container(fresh_name("az"))
    gcs_bucket = fake_gcs.create_bucket(fresh_name("gcs"))
    s3_common = (f"endpoint_url = {seaweed.endpoint}\naccess_key = {seaweed.access_key}\n"
                 f"secret_access_key = {seaweed.secret_key}\nregion_name = us-east-1\n")
    text = "[COMMON]\nmax_retries = 1\n"
    for section, bucket in buckets.items():
        text += f"[{section}]\n{s3_common}bucket_name = {bucket}\n"
    text += (f"[AZURE]\naccount_name = {AZURITE_ACCOUNT}\ncontainer_name = {container}\naccount_key = {AZURITE_KEY}\n"
             f"sas_token =\nendpoint_url = {azurite.endpoint}\n"
             f"[GCP]\nsecret_data =\nbucket_name = {gcs_bucket}\nendpoint_url = {fake_gcs.endpoint}\n")
    cfg = tmp_path / "config.ini"
    cfg.write_text(text)
    cfg.chmod(0o600)

    s3 = seaweed.boto3_client()
    az = azurite.service_client().get_container_client(container)
    gcs = fake_gcs.client().bucket(gcs_bucket)
    readers = {s: (lambda key, b=b: s3.get_object(Bucket=b, Key=key)["Body"].read()) for s, b in buckets.items()}
    readers["AZURE"] = lambda key: az.download_blob(key).readall()
    readers["GCP"] = lambda key: gcs.blob(key).download_as_bytes()
    return cfg, readers


def test_one_upload_reaches_all_five_clouds_byte_identical(cli, five_clouds):
    cfg, readers = five_clouds
    r = cli("upload", EXAMPLE_DATA, "--prefix", "projects/", "--config", cfg, "--json")
    assert r.code == 0, r.err
    doc = r.json
    files = sorted(p.relative_to(EXAMPLE_DATA).as_posix() for p in EXAMPLE_DATA.rglob("*") if p.is_file())
    assert doc["ok"] and len(doc["results"]) == 5 * len(files)
    assert {x["provider"] for x in doc["results"]} == set(readers)
    for res in doc["results"]:
        assert res["status"] == "uploaded"
        rel = res["key"][len("projects/"):]
        assert readers[res["provider"]](res["key"]) == (EXAMPLE_DATA / rel).read_bytes()
    schemes = {x["provider"]: x["uri"].split("://")[0] for x in doc["results"]}
    assert schemes == {"AWS": "s3", "ORACLE": "s3", "S3": "s3", "AZURE": "azure", "GCP": "gs"}


def test_check_reports_each_provider(cli, five_clouds, tmp_path):
    cfg, _ = five_clouds
    ok = cli("check", "--config", cfg)
    assert ok.code == 0, ok.err
    for section in ("AWS", "ORACLE", "S3", "AZURE", "GCP"):
        assert f"ok    [{section}]" in ok.out
    broken = cfg.read_text().replace("[ORACLE]\n", "[ORACLE]\n", 1)
    broken = broken.replace(f"bucket_name = {broken.split('[GCP]')[1].split('bucket_name = ')[1].splitlines()[0]}",
                            "bucket_name = no-such-bucket", 1)
    bad = tmp_path / "bad.ini"
    bad.write_text(broken + "\n")
    bad.chmod(0o600)
    r = cli("check", "--config", bad, "--json")
    rows = {row["section"]: row for row in r.json["sections"]}
    assert r.code == 1
    assert rows["GCP"]["status"] == "error" and "no-such-bucket" in rows["GCP"]["message"]
    assert rows["AZURE"]["status"] == "ok"


def test_check_unreachable_endpoint(cli, tmp_path):
    from ml_analytics.testing.servers import free_port

    cfg = tmp_path / "c.ini"
    cfg.write_text(f"[COMMON]\nmax_retries = 0\nretry_timeout = 2\n[S3]\nendpoint_url = http://127.0.0.1:{free_port()}\n"
                   "access_key = k\nsecret_access_key = PLANTED-secret-xyz\nbucket_name = b\n")
    r = cli("check", "--config", cfg)
    assert r.code == 1 and "FAIL  [S3]" in r.err and "cannot reach" in r.err
    assert "PLANTED-secret-xyz" not in r.text


def test_oracle_sends_what_oci_accepts(seaweed, tmp_path):
    """Path-style requests, no aws-chunked bodies, no CRC32 checksum; SHA256 on every PUT and part."""
    bucket = seaweed.create_bucket(fresh_name("oci"))
    proxy = FaultProxy(seaweed.port)
    try:
        oci = Oracle(regionName="us-east-1", accessKey=seaweed.access_key, secretAccessKey=seaweed.secret_key,
                     endpoint_url=proxy.endpoint, bucketName=bucket, partSizeMiB=5)
        (tmp_path / "small.json").write_bytes(b"{}\n")
        (tmp_path / "big.json").write_bytes(b"x" * (11 * 1024 * 1024))
        oci.upload_files("reports", str(tmp_path), "small.json")
        oci.upload_files("reports", str(tmp_path), "big.json")
    finally:
        proxy.close()
    puts = [r for r in proxy.requests if r.method == "PUT"]
    assert len(puts) == 4  # one single PUT, three parts
    for req in proxy.requests:
        assert req.target.startswith((f"/{bucket}/", f"/{bucket}?")), req.target  # path-style
        assert req.headers.get("host", "").startswith("127.0.0.1")
        assert "aws-chunked" not in req.headers.get("content-encoding", "")
        assert not req.headers.get("x-amz-content-sha256", "").startswith("STREAMING")
        assert "x-amz-checksum-crc32" not in req.headers and "x-amz-sdk-checksum-algorithm" not in req.headers
        assert req.headers.get("transfer-encoding") is None
    for req in puts:
        assert req.headers.get("x-amz-checksum-sha256")


def test_oracle_endpoint_from_namespace_and_druid_endpoint_config():
    oci = Oracle(regionName="ap-mumbai-1", accessKey="a", secretAccessKey="b", bucketName="reports",
                 namespace="tenancyns")
    assert oci.endpoint_url == "https://tenancyns.compat.objectstorage.ap-mumbai-1.oraclecloud.com"
    source = input_source(oci, ["x/y.json"])
    assert source["uris"] == ["s3://reports/x/y.json"]
    assert source["endpointConfig"] == {"url": oci.endpoint_url, "signingRegion": "ap-mumbai-1"}
    assert source["clientConfig"]["enablePathStyleAccess"] and source["clientConfig"]["disableChunkedEncoding"]
    with pytest.raises(ConfigError, match=r"\[ORACLE\] endpoint_url"):
        Oracle(regionName="r", accessKey="a", secretAccessKey="b", bucketName="x")


def test_aws_seed_constructor_and_credential_chain(seaweed, tmp_path, monkeypatch):
    bucket = seaweed.create_bucket(fresh_name("aws"))
    (tmp_path / "a.json").write_text("{}\n")
    seed = AWS(accessKey=seaweed.access_key, secretAccessKey=seaweed.secret_key, regionName="us-east-1",
               bucketName=bucket, endpoint_url=seaweed.endpoint, service_name="s3")
    assert seed.upload_files("p", str(tmp_path), "a.json").uri == f"s3://{bucket}/p/a.json"
    # no keys configured: the AWS credential chain (here: the environment) is used
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    chain = AWS(regionName="us-east-1", bucketName=bucket, endpoint_url=seaweed.endpoint)
    assert chain.upload_files("chain", str(tmp_path), "a.json").bytes == 3
    assert AWS(bucketName="b").virtual_hosted_style  # real AWS: virtual-hosted addressing
    with pytest.raises(ConfigError, match="both access_key and secret_access_key"):
        AWS(accessKey="only-half", bucketName="b")


def _cfg(tmp_path, text):
    p = tmp_path / "c.ini"
    p.write_text(text)
    return Config.load(p, env={})


@pytest.mark.parametrize("keys,fragment", [
    ("account_key =\nsas_token =\n", "set exactly one of account_key, sas_token, connection_string (none is set)"),
    ("account_key = k1234567\nsas_token = sv=1&sig=abcdef\n", "account_key and sas_token are all set"),
])
def test_azure_needs_exactly_one_credential(tmp_path, keys, fragment):
    cfg = _cfg(tmp_path, f"[AZURE]\naccount_name = acct\ncontainer_name = c\n{keys}")
    with pytest.raises(ConfigError) as e:
        MSAzure.from_config(cfg)
    assert fragment in str(e.value) and "[AZURE]" in str(e.value) and str(tmp_path) in str(e.value)
    assert "abcdef" not in str(e.value) and "k1234567" not in str(e.value)


def test_azure_connection_string(azurite, tmp_path):
    container = azurite.create_container(fresh_name("cs"))
    (tmp_path / "a.json").write_text("{}\n")
    az = MSAzure(containerName=container, connectionString=azurite.connection_string)
    assert az.account == AZURITE_ACCOUNT
    assert az.upload_files("p", str(tmp_path), "a.json").uri == f"azure://{container}/p/a.json"
    assert input_source(az, ["p/a.json"]) == {
        "type": "azureStorage", "uris": [f"azureStorage://{AZURITE_ACCOUNT}/{container}/p/a.json"]}
    assert input_source(az, ["p/a.json"], azure_input_source="azure")["uris"] == [f"azure://{container}/p/a.json"]


def test_azure_connection_string_with_a_sas_uploads_blocks(azurite, tmp_path):
    from test_conformance import _account_sas

    container = azurite.create_container(fresh_name("cs"))
    data = os.urandom(33 * 1024 * 1024 + 7)  # staged blocks, signed by the SAS inside the connection string
    (tmp_path / "big.bin").write_bytes(data)
    cs = f"BlobEndpoint={azurite.endpoint};SharedAccessSignature={_account_sas()}"
    az = MSAzure(containerName=container, connectionString=cs)
    stored = az.put_file(tmp_path / "big.bin", "p/big.bin")
    blob = azurite.service_client().get_container_client(container).get_blob_client("p/big.bin")
    assert blob.download_blob().readall() == data
    from awscrt.checksums import crc64nvme

    assert stored.md5 is None and blob.get_blob_properties().metadata == {"ml_analytics_crc64": f"{crc64nvme(data):016x}"}


def test_azure_block_buffers_are_reused_and_never_leak_one_files_bytes_into_another(azurite, tmp_path):
    """Big uploads read their blocks into buffers the provider keeps (a fresh 8 MiB bytes per block
    cost ~45,000 page faults and twice the client CPU per 256 MiB). Files of different sizes, uploaded
    at once and one after another by one provider, each land byte for byte: no block carries a
    previous file's bytes, not even past a short last block."""
    from concurrent.futures import ThreadPoolExecutor

    container = azurite.create_container(fresh_name("buf"))
    az = MSAzure(accountName=AZURITE_ACCOUNT, accountKey=AZURITE_KEY, containerName=container,
                 endpoint_url=azurite.endpoint, maxConcurrency=2)
    sizes = [40 * 1024 * 1024 + 3, 33 * 1024 * 1024 + 1, 48 * 1024 * 1024]
    files = []
    for n, size in enumerate(sizes):
        (tmp_path / f"f{n}.bin").write_bytes(bytes([n + 1]) * size)  # a file of one byte value each
        files.append(tmp_path / f"f{n}.bin")
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda f: az.put_file(f, f"p/{f.name}"), files))
    for f in reversed(files):  # again, one after another, over the buffers the first round left
        az.put_file(f, f"q/{f.name}")
    client = azurite.service_client().get_container_client(container)
    for f in files:
        for prefix in ("p", "q"):
            assert client.get_blob_client(f"{prefix}/{f.name}").download_blob().readall() == f.read_bytes()
    assert 0 < len(az._buffers._free) <= az.max_concurrency + 2


def test_azure_uploads_over_tls_small_and_big_and_a_bad_certificate_is_refused(azurite, tmp_path):
    """The upload requests are written and read by this project on the TLS socket http.client opened."""
    from ml_analytics.errors import NetworkError
    from harness.druid import TLSFront

    container = azurite.create_container(fresh_name("tls"))
    front = TLSFront(tmp_path / "tls", "localhost", azurite.port).start()
    try:
        endpoint = f"https://localhost:{front.port}/{AZURITE_ACCOUNT}"
        az = MSAzure(accountName=AZURITE_ACCOUNT, accountKey=AZURITE_KEY, containerName=container,
                     endpoint_url=endpoint, verifyTls=False)
        big = os.urandom(33 * 1024 * 1024 + 3)
        (tmp_path / "big.bin").write_bytes(big)
        assert az.put_bytes(b"over TLS", "t/small.txt").bytes == 8
        assert az.put_file(tmp_path / "big.bin", "t/big.bin").bytes == len(big)
        az.close()
        plain = azurite.service_client().get_container_client(container)
        assert plain.download_blob("t/small.txt").readall() == b"over TLS"
        assert plain.download_blob("t/big.bin").readall() == big
        checking = MSAzure(accountName=AZURITE_ACCOUNT, accountKey=AZURITE_KEY, containerName=container,
                           endpoint_url=endpoint)  # the self-signed certificate is not trusted
        with pytest.raises(NetworkError, match="CERTIFICATE_VERIFY_FAILED"):
            checking.put_bytes(b"x", "t/refused.txt")
    finally:
        front.stop()


def test_azure_uploads_use_the_environment_proxy(azurite, tmp_path, monkeypatch):
    container = azurite.create_container(fresh_name("px"))
    with FaultProxy(azurite.port) as proxy:
        for name in ("HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, proxy.endpoint)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        az = MSAzure(accountName=AZURITE_ACCOUNT, accountKey=AZURITE_KEY, containerName=container,
                     endpoint_url=azurite.endpoint)
        az.put_bytes(b"through the proxy", "a/b c.txt")
        sent = [r.target for r in proxy.requests]
        assert sent == [f"http://127.0.0.1:{azurite.port}/{AZURITE_ACCOUNT}/{container}/a/b%20c.txt"]
        assert az.container.download_blob("a/b c.txt").readall() == b"through the proxy"


def _service_account(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "ml-analytics-test", "private_key_id": "abc123def456",
            "private_key": pem, "client_email": "uploader@ml-analytics-test.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}
    p = tmp_path / "sa.json"
    p.write_text(json.dumps(info))
    return p, pem


def test_gcp_service_account_file_is_accepted_by_config_checking(cli, tmp_path):
    sa, pem = _service_account(tmp_path)
    cfg = tmp_path / "c.ini"
    cfg.write_text(f"[GCP]\nsecret_data = {sa}\nbucket_name = reports\n")
    cfg.chmod(0o600)
    r = cli("check", "--config", cfg, "--offline")
    assert r.code == 0 and "ok    [GCP] config valid" in r.out
    provider = GCP(secret_data=str(sa), bucketName="reports")
    assert provider.project == "ml-analytics-test"
    provider.gcs_bucket  # builds credentials from the file; no request, no environment change
    import os

    assert "GOOGLE_APPLICATION_CREDENTIALS" not in os.environ
    assert pem.splitlines()[1] not in repr(provider)


@pytest.mark.parametrize("content,fragment", [
    (None, "does not exist"),
    ("{not json", "is not valid JSON (line 1)"),
    ('{"type": "service_account"}', "lacks client_email, private_key, token_uri"),
    ('{"type": "authorized_user", "client_email": "a", "private_key": "PLANTED-pk", "token_uri": "t"}',
     "expected 'service_account'"),
])
def test_gcp_bad_service_account_files(cli, tmp_path, content, fragment):
    sa = tmp_path / "sa.json"
    if content is not None:
        sa.write_text(content)
    cfg = tmp_path / "c.ini"
    cfg.write_text(f"[GCP]\nsecret_data = {sa}\nbucket_name = reports\n")
    r = cli("check", "--config", cfg, "--offline")
    assert r.code == 2 and "[GCP] secret_data" in r.err and fragment in r.err
    assert "PLANTED-pk" not in r.text


def test_gcp_uploads_carry_the_service_account_token_and_refresh_it_on_401(fake_gcs, tmp_path):
    """The key file's token endpoint is a loopback stand-in (Google's is not reachable here): the upload
    path must fetch a token with the key, send it as a bearer token, and fetch a new one after a 401."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    tokens = []

    class TokenEndpoint(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["content-length"]))
            tokens.append(f"token-{len(tokens) + 1}")
            body = json.dumps({"access_token": tokens[-1], "expires_in": 3600, "token_type": "Bearer"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sa, _ = _service_account(tmp_path)
    info = json.loads(sa.read_text())
    info["token_uri"] = f"http://127.0.0.1:{server.server_address[1]}/token"
    sa.write_text(json.dumps(info))
    bucket = fake_gcs.create_bucket(fresh_name("sa"))
    seen = []

    def first_upload_unauthorized(req):
        seen.append(req.headers.get("authorization"))
        if len(seen) == 1:
            return ("status", 401, b'{"error": {"code": 401, "message": "token expired"}}')

    try:
        with FaultProxy(fake_gcs.port, first_upload_unauthorized) as proxy:
            gcp = GCP(secret_data=str(sa), bucketName=bucket, endpoint_url=proxy.endpoint)
            gcp.put_bytes(b"signed", "a.json")
    finally:
        server.shutdown()
    assert seen == ["Bearer token-1", "Bearer token-2"]
    assert fake_gcs.client().bucket(bucket).blob("a.json").download_as_bytes() == b"signed"
