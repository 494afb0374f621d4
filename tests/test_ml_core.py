"""[ML_CORE]: uploads through ml-core-service's pre-signed URLs, against the stand-in service
(tests/mlcore_double.py) signing real URLs for SeaweedFS (S3), Azurite (SAS) and fake-gcs-server (GCS,
through the XML gateway): the conformance suite on all three, then what is particular to it."""

from __future__ import annotations

import base64
import hashlib
import os
import urllib.error
import urllib.request

import pytest
from conftest import fresh_name
from mlcore_double import AzureSigner, GcsSigner, MLCoreDouble, S3Signer

from ml_analytics.cloud_storage.ml_core import MLCore, Signed, split_key, url_expiry, url_kind
from ml_analytics.cloud_storage.registry import registry
from ml_analytics.config import Config
from ml_analytics.errors import NotSupportedError, StorageError, TransientError
from ml_analytics.multicloud import MultiCloud
from ml_analytics.retry import RetryPolicy
from ml_analytics.testing.conformance import ProviderConformance
from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY
from ml_analytics.transfer import plan_uploads

TOKEN = "PLANTED-internal-access-token-51f0c2"
FAST = RetryPolicy(max_retries=1, initial_backoff=0.01, max_backoff=0.05, total_timeout=5)
MiB = 1024 * 1024


def _corrupt_puts(req):
    return ("corrupt",) if req.method == "PUT" and req.body else None


@pytest.fixture
def double_for(signer_for):
    """double_for(endpoint=None): a stand-in service signing URLs for the store, or for ``endpoint`` in front of it."""
    made = []

    def make(endpoint=None):
        double = MLCoreDouble(signer_for(endpoint), TOKEN)
        made.append(double)
        return double

    yield make
    for double in made:
        double.close()


@pytest.fixture
def double(double_for):
    return double_for()


def _provider(double, bucket, token=TOKEN, **kw):
    return MLCore(url=double.url, internalAccessToken=token, bucketName=bucket, retry=kw.pop("retry", FAST), **kw)


# -- the three stores ----------------------------------------------------------------------------------
class _S3Store:
    scheme = "s3"

    @pytest.fixture
    def bucket(self, seaweed):
        return seaweed.create_bucket(fresh_name("mlc"))

    @pytest.fixture
    def signer_for(self, seaweed):
        return lambda endpoint=None: S3Signer(endpoint or seaweed.endpoint, seaweed.access_key, seaweed.secret_key)

    @pytest.fixture
    def proxied(self, seaweed, proxy_factory):
        return lambda rule: proxy_factory(seaweed.port, rule).endpoint

    @pytest.fixture
    def read_back(self, seaweed, bucket):
        client = seaweed.boto3_client()
        return lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read()

    @pytest.fixture
    def list_back(self, seaweed, bucket):
        client = seaweed.boto3_client()
        return lambda prefix="": [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix)
                                  .get("Contents", [])]

    @pytest.fixture
    def leftovers(self, seaweed, bucket):
        client = seaweed.boto3_client()
        return lambda: [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


class _AzureStore:
    scheme = "azure"

    @pytest.fixture
    def bucket(self, azurite):
        return azurite.create_container(fresh_name("mlc"))

    @pytest.fixture
    def signer_for(self, azurite):
        return lambda endpoint=None: AzureSigner(endpoint or azurite.endpoint, AZURITE_ACCOUNT, AZURITE_KEY)

    @pytest.fixture
    def proxied(self, azurite, proxy_factory):
        return lambda rule: f"{proxy_factory(azurite.port, rule).endpoint}/{AZURITE_ACCOUNT}"

    @pytest.fixture
    def read_back(self, azurite, bucket):
        client = azurite.service_client().get_container_client(bucket)
        return lambda key: client.download_blob(key).readall()

    @pytest.fixture
    def list_back(self, azurite, bucket):
        client = azurite.service_client().get_container_client(bucket)
        return lambda prefix="": [b.name for b in client.list_blobs(name_starts_with=prefix or None)]

    @pytest.fixture
    def leftovers(self, azurite, bucket):
        client = azurite.service_client().get_container_client(bucket)

        def uncommitted():
            names = {b.name for b in client.list_blobs(include=["uncommittedblobs"])}
            return [n for n in names if client.get_blob_client(n).get_block_list("uncommitted")[1]]
        return uncommitted


class _GcsStore:
    scheme = "gs"

    @pytest.fixture
    def bucket(self, fake_gcs):
        return fake_gcs.create_bucket(fresh_name("mlc"))

    @pytest.fixture
    def signer_for(self, gcs_gateway, gcs_key):
        return lambda endpoint=None: GcsSigner(endpoint or gcs_gateway.endpoint, gcs_key)

    @pytest.fixture
    def proxied(self, gcs_gateway, proxy_factory):
        return lambda rule: proxy_factory(gcs_gateway.port, rule).endpoint

    @pytest.fixture
    def read_back(self, fake_gcs, bucket):
        b = fake_gcs.client().bucket(bucket)
        return lambda key: b.blob(key).download_as_bytes()

    @pytest.fixture
    def list_back(self, fake_gcs, bucket):
        b = fake_gcs.client().bucket(bucket)
        return lambda prefix="": [x.name for x in b.list_blobs(prefix=prefix or None)]

    @pytest.fixture
    def leftovers(self, fake_gcs, bucket):
        """One PUT per object leaves no session or part behind; any object but the tests' own keys is one."""
        b = fake_gcs.client().bucket(bucket)
        return lambda: [x.name for x in b.list_blobs() if x.name not in ("keep/report.json", "changing/report.json")]


# -- the conformance suite ---------------------------------------------------------------------------------
class _MLCoreConformance(ProviderConformance):
    big_size = 16 * MiB  # one PUT per object: a big file is one request whatever its size

    @pytest.fixture
    def provider(self, double, bucket):
        return _provider(double, bucket)

    @pytest.fixture
    def expected_uri(self, bucket):
        return lambda key: f"{self.scheme}://{bucket}/{key}"

    @pytest.fixture
    def wrong_credentials_provider(self, double, bucket):
        return _provider(double, bucket, token="PLANTED-wrong-internal-token")

    @pytest.fixture
    def missing_bucket_provider(self, double):
        return _provider(double, fresh_name("missing"))  # the service signs for any bucket it is given

    @pytest.fixture
    def provider_through(self, double_for, bucket, proxied):
        return lambda rule: _provider(double_for(proxied(rule)), bucket)

    @pytest.fixture
    def config_text(self, double, bucket):
        return (f"[ML_CORE]\nurl = {double.url}\ninternal_access_token = {TOKEN}\nbucket_name = {bucket}\n"
                "[COMMON]\nmax_retries = 1\n")


class _EveryStore:
    """What is particular to ML_CORE, on each store."""

    def test_a_batch_of_files_lands_byte_identical_with_the_services_uris(self, double, bucket, read_back, tmp_path):
        files = {"sl_projects.json": os.urandom(3000), "sub/ml_projects_distinctCount.json": b"",
                 "sub/deeper/big.json": os.urandom(9 * MiB)}  # memory, empty, and the streamed path
        for name, data in files.items():
            (tmp_path / "out" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "out" / name).write_bytes(data)
        cfg = tmp_path / "config.ini"
        cfg.write_text(f"[ML_CORE]\nurl = {double.url}\ninternal_access_token = {TOKEN}\nbucket_name = {bucket}\n")
        with MultiCloud(cfg) as mc:
            results = mc.upload([tmp_path / "out"], "projects/")
        assert sorted((r.key, r.status) for r in results) == sorted((f"projects/{n}", "uploaded") for n in files)
        for r in results:
            assert read_back(r.key) == files[r.key[len("projects/"):]]
            assert r.uri == f"{self.scheme}://{bucket}/{r.key}"  # the service's inputSource URI
            assert r.md5 == hashlib.md5(files[r.key[len("projects/"):]]).hexdigest()
        writes = [q["body"] for q in double.requests if q["body"] and q["body"].get("operation") == "write"]
        assert sorted(w["folderPath"] + w["request"]["files"][0] for w in writes) == sorted(r.key for r in results)
        assert all(w["action"] == "signedUrl" and w["bucketName"] == bucket for w in writes)

    def test_progress_counts_a_big_files_bytes_once(self, double, bucket, read_back, tmp_path):
        """A big file is read for its MD5, then for the PUT, and again when its URL is renewed: the progress
        display is told of its bytes once, not three times."""
        big = tmp_path / "out" / "big.json"
        big.parent.mkdir()
        big.write_bytes(os.urandom(9 * MiB))
        cfg = tmp_path / "config.ini"
        cfg.write_text(f"[ML_CORE]\nurl = {double.url}\ninternal_access_token = {TOKEN}\nbucket_name = {bucket}\n")
        counted = []
        double.expired = 1  # the first URL is refused by the store: the body is sent twice
        with MultiCloud(cfg) as mc:
            results = mc.run(plan_uploads([big.parent], "progress/"), on_bytes=counted.append)
        assert [(r.key, r.status) for r in results] == [("progress/big.json", "uploaded")] and double.expired == 0
        assert read_back("progress/big.json") == big.read_bytes()
        assert sum(counted) == 9 * MiB

    def test_expired_urls_are_renewed(self, double, bucket, read_back, tmp_path):
        """The store itself refuses the expired URL (403, GCS's 400 ExpiredToken): one fresh URL, no retry
        spent; a URL that ended long before it was handed out is not even sent."""
        provider = _provider(double, bucket, retry=RetryPolicy(max_retries=0))  # renewal is no retry
        big = tmp_path / "big.json"
        big.write_bytes(os.urandom(9 * MiB))  # the streamed path too
        for key, put in (("observation/status/sl_observation_status.json", lambda k: provider.put_bytes(b"a\n", k)),
                         ("projects/big.json", lambda k: provider.put_file(big, k))):
            double.expired = 1  # the first URL ended a minute before it was handed out
            before = len(double.requests)
            stored = put(key)
            signings = [q for q in double.requests[before:] if q["body"] and q["body"].get("operation") == "write"]
            assert len(signings) == 2 and double.expired == 0
        assert read_back("observation/status/sl_observation_status.json") == b"a\n"
        assert read_back("projects/big.json") == big.read_bytes()
        double.expired = 1
        assert provider.stat(stored.key).size == 9 * MiB  # reads renew too
        double.expired, double.expired_by = 1, 3600.0  # ended an hour before: renewed without sending it
        provider.put_bytes(b"b\n", "o/stale.json")
        assert read_back("o/stale.json") == b"b\n"
        double.expired, double.expired_by = 2, 3600.0  # the service keeps handing out dead URLs
        with pytest.raises(StorageError, match="handed out a URL that had ended at .*; clocks apart"):
            provider.put_bytes(b"c\n", "o/dead.json")

    def test_a_url_refused_twice_fails_naming_the_store_and_nothing_is_stored(self, double_for, bucket, proxied,
                                                                              read_back):
        refuse = ("status", 403, b"<Error><Code>AccessDenied</Code><Message>planted refusal</Message></Error>")
        provider = _provider(double_for(proxied(lambda r: refuse if r.method == "PUT" else None)), bucket)
        with pytest.raises(StorageError) as e:
            provider.put_bytes(b"x", "refused/x.json")
        assert "the store refused the pre-signed URL" in str(e.value) and "planted refusal" in str(e.value)
        assert "?" not in str(e.value).replace("?…", "")
        with pytest.raises(Exception):
            read_back("refused/x.json")

    def test_a_short_url_list_fails_that_file_only(self, double, bucket, read_back):
        provider = _provider(double, bucket)
        double.short = 1
        with pytest.raises(StorageError, match=r"signed 0 URL\(s\) for the 1 file asked, none for this key"):
            provider.put_bytes(b"x", "short/a.json")
        assert provider.stat("short/a.json") is None
        provider.put_bytes(b"y", "short/b.json")
        assert read_back("short/b.json") == b"y"

    def test_service_5xx_is_retried_then_named(self, double, bucket, read_back):
        provider = _provider(double, bucket)
        double.failures = 1
        provider.put_bytes(b"z", "r/a.json")
        assert read_back("r/a.json") == b"z"
        double.failures = 10
        with pytest.raises(TransientError, match="ml-core-service answered 500: Failed to generate signed url"):
            provider.put_bytes(b"z", "r/b.json")

    def test_expiry_is_asked_in_the_services_unit_for_the_cloud(self, double, bucket):
        provider = _provider(double, bucket, expiresIn=3600)
        provider.put_bytes(b"1", "u/a.json")
        provider.put_bytes(b"2", "u/b.json")
        asked = [q["body"]["expiresIn"] for q in double.requests if q["body"]]
        assert asked[0] == 3600  # the cloud is not known yet: seconds, the shorter reading
        assert asked[-1] == (60 if self.scheme in ("azure", "gs") else 3600)  # minutes for Azure and GCS


class _ChecksumSent:
    """Azure SAS and S3 SigV4 URLs leave Content-MD5 free: the store refuses a corrupted body."""

    @pytest.fixture
    def corrupting_provider(self, double_for, bucket, proxied):
        return _provider(double_for(proxied(_corrupt_puts)), bucket)


class TestMLCoreS3(_S3Store, _ChecksumSent, _MLCoreConformance, _EveryStore):
    pass


class TestMLCoreAzure(_AzureStore, _ChecksumSent, _MLCoreConformance, _EveryStore):
    pass


class TestMLCoreGCS(_GcsStore, _MLCoreConformance, _EveryStore):
    unsupported = {"corrupting_provider": (
        "the service signs GCS write URLs (V2) with an empty Content-MD5, so no checksum can travel with the body "
        "and GCS stores a corrupted one; ML_CORE compares the MD5 GCS reports and sends again, and reports the "
        "file failed if every attempt is corrupted, but the object then holds the corrupted body "
        "(test_gcs_corruption_is_caught_and_resent covers what can be checked)")}



    def test_gcs_corruption_is_caught_and_resent(self, double_for, bucket, proxied, read_back):
        """A body corrupted once is sent again (the MD5 GCS reports differs); corrupted every time, the file
        fails."""
        seen = []

        def corrupt_first(req):
            if req.method == "PUT":
                seen.append(1)
                return ("corrupt",) if len(seen) == 1 else None
            return None

        provider = _provider(double_for(proxied(corrupt_first)), bucket)
        provider.put_bytes(b'{"row": 1}\n' * 50, "c/resent.json")
        assert read_back("c/resent.json") == b'{"row": 1}\n' * 50 and len(seen) == 2
        with pytest.raises(StorageError, match="the store reports MD5"):
            _provider(double_for(proxied(_corrupt_puts)), bucket).put_bytes(b"abc" * 10, "c/bad.json")

    def test_the_gateway_checks_signatures_as_gcs_does(self, double, bucket, tmp_path):
        """Why ML_CORE sends no Content-MD5 to a GCS V2 URL: the signature covers it (signed empty)."""
        provider = _provider(double, bucket)
        signed = provider.sign("g/a.json", "write")
        assert signed.kind == "gcs"

        def put(url, headers):
            req = urllib.request.Request(url, data=b"abc", method="PUT", headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return resp.status, resp.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()

        md5 = base64.b64encode(hashlib.md5(b"abc").digest()).decode()
        assert put(signed.url, {"Content-Type": "multipart/form-data", "Content-MD5": md5})[0] == 403
        assert put(signed.url, {"Content-Type": "application/json"})[0] == 403
        tampered = signed.url.replace("Signature=", "Signature=AA")
        assert put(tampered, {"Content-Type": "multipart/form-data"})[0] in (400, 403)
        assert put(signed.url, {"Content-Type": "multipart/form-data"})[0] == 200


# -- the provider on its own, against S3 ----------------------------------------------------------------
@pytest.fixture
def s3_bucket(seaweed):
    return seaweed.create_bucket(fresh_name("mlc"))


@pytest.fixture
def s3_double(seaweed):
    double = MLCoreDouble(S3Signer(seaweed.endpoint, seaweed.access_key, seaweed.secret_key), TOKEN)
    yield double
    double.close()


def _release60_config(tmp_path, double, bucket, extra=""):
    """A config.ini shaped like release 6.0's as the Ansible role renders it: no provider section."""
    cfg = tmp_path / "config.ini"
    cfg.write_text(f"[API_HEADERS]\ncontent_type = application/json\ninternal_access_token = {TOKEN}\n"
                   f"[CLOUD]\ncontainer_name = {bucket}\n[COMMON]\nprojects_blob_path = projects/\n"
                   f"[JSON_VARIABLE]\nstore = aws\n[API_ENDPOINTS]\nbase_url = https://example.invalid/\n"
                   f"[ML_CORE_SERVICE_URL]\nurl = {double.url}\n{extra}")
    cfg.chmod(0o600)
    return cfg


def test_release60_sections_configure_it_without_a_section_of_its_own(s3_double, s3_bucket, tmp_path, seaweed):
    cfg = _release60_config(tmp_path, s3_double, s3_bucket)
    config = Config.load(cfg, env={}, known_sections=tuple(registry.known_names()))
    assert registry.implied(config) == ["ML_CORE"]
    mc = MultiCloud(config=config)
    assert mc.sections == ["ML_CORE"]
    provider = mc.provider("ML_CORE")
    assert (provider.url, provider.bucket) == (s3_double.url, s3_bucket) and TOKEN in provider.secrets
    # a 5.x config (no [ML_CORE_SERVICE_URL]) is not taken for one
    plain = tmp_path / "5x.ini"
    plain.write_text(f"[API_HEADERS]\ninternal_access_token = {TOKEN}\n[LOCAL]\nroot = {tmp_path / 'store'}\n")
    assert registry.implied(Config.load(plain, env={}, known_sections=tuple(registry.known_names()))) == []
    # a key of [ML_CORE] wins over the fallback
    both = _release60_config(tmp_path, s3_double, s3_bucket, extra="[ML_CORE]\nbucket_name = other-bucket\n")
    with MultiCloud(both) as mc2:
        assert mc2.sections == ["ML_CORE"] and mc2.provider("ML_CORE").bucket == "other-bucket"
    # next to another provider section, 6.0's sections alone add nothing; --to ML_CORE or an [ML_CORE] header do
    local = f"[LOCAL]\nroot = {tmp_path / 'store'}\n"
    with MultiCloud(_release60_config(tmp_path, s3_double, s3_bucket, extra=local)) as mc3:
        assert mc3.sections == ["LOCAL"]
    with MultiCloud(_release60_config(tmp_path, s3_double, s3_bucket, extra=local), sections=["ML_CORE"]) as mc4:
        assert mc4.sections == ["ML_CORE"] and mc4.provider("ML_CORE").bucket == s3_bucket
    with MultiCloud(_release60_config(tmp_path, s3_double, s3_bucket, extra=local + "[ML_CORE]\n")) as mc5:
        assert mc5.sections == ["LOCAL", "ML_CORE"] and mc5.provider("ML_CORE").url == s3_double.url
    blank = "[ML_CORE]\nurl =\ninternal_access_token =\nbucket_name =\n"  # rendered with every value empty
    with MultiCloud(_release60_config(tmp_path, s3_double, s3_bucket, extra=blank)) as mc6:
        assert mc6.sections == ["ML_CORE"] and mc6.provider("ML_CORE").bucket == s3_bucket


def test_cli_upload_to_ml_core_with_release60_config(s3_double, s3_bucket, tmp_path, seaweed, cli):
    out = tmp_path / "out"
    out.mkdir()
    (out / "micro_improvement.csv").write_text("a,b\n1,2\n")
    (out / "micro_improvement.json").write_text('{"a": 1}\n')
    cfg = _release60_config(tmp_path, s3_double, s3_bucket)
    r = cli("-vv", "upload", out, "--to", "ML_CORE", "--prefix", "Manage_Learn_Data/micro_improvement/", "--config",
            cfg, "--json")
    assert r.code == 0, r.err
    doc = r.json
    assert sorted(x["key"] for x in doc["results"]) == ["Manage_Learn_Data/micro_improvement/micro_improvement.csv",
                                                        "Manage_Learn_Data/micro_improvement/micro_improvement.json"]
    s3 = seaweed.boto3_client()
    for x in doc["results"]:
        assert x["uri"] == f"s3://{s3_bucket}/{x['key']}"
        local = out / x["key"].rsplit("/", 1)[1]
        assert s3.get_object(Bucket=s3_bucket, Key=x["key"])["Body"].read() == local.read_bytes()
    _assert_no_secret(r.out + r.err, s3_double)
    check = cli("check", "--config", cfg)
    assert check.code == 0 and "ok    [ML_CORE] ml-core-service signs for bucket" in check.out, check.err
    assert not [k for k in _keys(seaweed, s3_bucket) if k.startswith(".ml-analytics-check")]  # check wrote nothing


def _keys(seaweed, bucket):
    return [o["Key"] for o in seaweed.boto3_client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def _assert_no_secret(text, double):
    assert TOKEN not in text
    for url in double.issued:  # no pre-signed URL's query (its signature) anywhere
        query = url.split("?", 1)[1]
        assert query not in text
        for param in query.split("&"):
            name, _, value = param.partition("=")
            if name.lower() in ("sig", "x-amz-signature", "signature", "x-amz-credential"):
                assert value not in text


def test_wrong_token_fails_with_one_line_and_no_secret(s3_double, s3_bucket, tmp_path, cli):
    (tmp_path / "r.json").write_text("{}\n")
    cfg = _release60_config(tmp_path, s3_double, s3_bucket)
    s3_double.token = "PLANTED-the-service-now-wants-another"
    r = cli("upload", tmp_path / "r.json", "--to", "ML_CORE", "--config", cfg, "--json")
    assert r.code == 1
    (result,) = r.json["results"]
    assert result["status"] == "failed" and "wrong credentials" in result["error"] and "401" in result["error"]
    assert "ERR_TOKEN_FIELD_MISSING" in result["error"] and "\n" not in result["error"]
    assert TOKEN not in r.out + r.err and "PLANTED-the-service" not in r.out + r.err
    assert [q["authorised"] for q in s3_double.requests] == [False]  # refused once: not retried


def test_secrets_stay_out_of_errors_logs_and_reprs(s3_double, s3_bucket, tmp_path, seaweed, cli, proxy_factory):
    """A store that refuses every PUT: the debug log, the errors and the --json output hold neither the token
    nor any URL's signature."""
    refuse = ("status", 403, b"<Error><Code>SignatureDoesNotMatch</Code><Message>planted</Message></Error>")
    proxy = proxy_factory(seaweed.port, lambda r: refuse if r.method == "PUT" else None)
    double = MLCoreDouble(S3Signer(proxy.endpoint, seaweed.access_key, seaweed.secret_key), TOKEN)
    try:
        (tmp_path / "r.json").write_text("{}\n")
        cfg = _release60_config(tmp_path, double, s3_bucket)
        r = cli("-vv", "upload", tmp_path / "r.json", "--to", "ML_CORE", "--config", cfg, "--json")
        assert r.code == 1 and "the store refused the pre-signed URL" in r.json["results"][0]["error"]
        assert len(double.issued) >= 2  # renewed once
        _assert_no_secret(r.out + r.err, double)
        provider = _provider(double, s3_bucket)
        assert TOKEN not in repr(provider) + repr(provider.settings)
        with pytest.raises(StorageError) as e:
            provider.put_bytes(b"x", "k.json")
        _assert_no_secret(str(e.value), double)
    finally:
        double.close()


def test_skip_existing_asks_key_by_key(s3_double, s3_bucket, tmp_path, cli):
    """The store cannot list (declared): --skip-existing stats each key through a read URL."""
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a.json", "b.json", "c.json"):
        (out / name).write_text(name * 100)
    cfg = _release60_config(tmp_path, s3_double, s3_bucket)
    first = cli("upload", out, "--prefix", "p/", "--config", cfg, "--json")
    assert first.code == 0 and first.json["summary"]["uploaded"] == 3, first.err
    (out / "b.json").write_text("changed" * 100)
    again = cli("upload", out, "--prefix", "p/", "--config", cfg, "--json", "--skip-existing")
    assert again.code == 0, again.err
    assert {x["key"]: x["status"] for x in again.json["results"]} == {"p/a.json": "skipped", "p/b.json": "uploaded",
                                                                      "p/c.json": "skipped"}


def test_declared_inabilities_and_registration():
    assert set(MLCore.cannot) == {"list", "delete"}
    provider = MLCore(url="http://127.0.0.1:9/ml-core", internalAccessToken=TOKEN, bucketName="b")
    with pytest.raises(NotSupportedError, match="cannot list"):
        list(provider.list("p/"))
    with pytest.raises(NotSupportedError, match="cannot delete"):
        provider.delete("p/a.json")
    from ml_analytics.cloud_storage.base import CloudProvider
    from ml_analytics.cloud_storage.registry import contract_problems

    class Quiet(CloudProvider):
        section = "QUIET"
        cannot = {"list": "", "rename": "no such call"}

        def put_file(self, path, key): ...
        def stat(self, key): ...
        def list(self, prefix=""): ...
        def delete(self, key): ...

    problems = contract_problems(Quiet)
    assert "declares it cannot rename; only list, delete may be declared" in problems
    assert "declares it cannot list without saying why" in problems


def test_provider_listing_and_init(cli):
    r = cli("providers", "--json")
    doc = {p["section"]: p for p in r.json["providers"]}
    assert doc["ML_CORE"]["origin"] == "ml_analytics.cloud_storage.ml_core"
    assert {k["name"] for k in doc["ML_CORE"]["keys"]} == {"url", "internal_access_token", "bucket_name", "cloud",
                                                           "expires_in", "verify_tls"}
    assert [k["secret"] for k in doc["ML_CORE"]["keys"] if k["name"] == "internal_access_token"] == [True]
    assert set(doc["ML_CORE"]["capabilities"]) == {"ReadBack", "SignedUrls"}


@pytest.mark.parametrize("url,kind,expires", [
    ("https://a.blob.core.windows.net/c/k?sv=2020-10-02&st=2026-01-01T00%3A00%3A00Z&se=2026-01-01T01%3A00%3A00Z"
     "&sr=b&sp=w&sig=abc", "azure", 1767229200.0),
    ("https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260101T000000Z&X-Amz-Expires=600"
     "&X-Amz-SignedHeaders=host&X-Amz-Signature=abc", "s3v4", 1767225600.0 + 600),
    ("https://storage.googleapis.com/b/k?GoogleAccessId=x%40y&Expires=1767225600&Signature=abc", "gcs", 1767225600.0),
    ("https://storage.googleapis.com/b/k?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20260101T000000Z"
     "&X-Goog-Expires=900&X-Goog-Signature=abc", "gcs", 1767225600.0 + 900),
    ("https://b.s3.amazonaws.com/k?AWSAccessKeyId=AK&Expires=1767225600&Signature=abc", "s3v2", 1767225600.0),
    ("https://example.invalid/upload?file=k", "unknown", None),
])
def test_url_kinds_and_expiry(url, kind, expires):
    assert url_kind(url) == kind and url_expiry(url) == expires
    signed = Signed("k", url, kind, expires, None, None)
    assert signed.expiring(now=(expires or 0) - 10) is (expires is not None)
    assert not signed.expiring(now=(expires or 0) - 3600)


def test_keys_are_split_as_the_service_joins_them():
    assert split_key("observation/status/sl_observation_status.json") == ("observation/status/",
                                                                           "sl_observation_status.json")
    assert split_key("druidData.json") == ("d", "ruidData.json")  # folderPath must not be empty


def test_oci_urls_are_s3_urls_in_seconds(seaweed, s3_bucket):
    """A service deployed on OCI signs path-style SigV4 URLs (the S3 compatibility API), counts expiresIn in
    seconds and names s3:// URIs for Druid."""
    double = MLCoreDouble(S3Signer(seaweed.endpoint, seaweed.access_key, seaweed.secret_key, provider="oci"), TOKEN)
    try:
        provider = _provider(double, s3_bucket, expiresIn=900)
        stored = provider.put_bytes(b"oci\n", "projects/oci.json")
        provider.put_bytes(b"oci\n", "projects/oci2.json")
        assert stored.uri == f"s3://{s3_bucket}/projects/oci.json"
        assert [q["body"]["expiresIn"] for q in double.requests] == [900, 900]
        assert seaweed.boto3_client().get_object(Bucket=s3_bucket, Key="projects/oci.json")["Body"].read() == b"oci\n"
        assert provider.check().startswith(f"ml-core-service signs for bucket '{s3_bucket}' (OCI)")
    finally:
        double.close()
