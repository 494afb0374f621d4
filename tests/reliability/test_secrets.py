"""Planted secrets in every credential key never appear in stdout, stderr, exceptions or reprs."""

from __future__ import annotations

import base64
import json

import pytest
from conftest import EXAMPLE_DATA, fresh_name
from druid_double import OverlordDouble

from ml_analytics.testing.servers import AZURITE_ACCOUNT

S3_SECRET = "PLANTEDs3SECRETvalue01"
AWS_SECRET = "PLANTEDawsSECRETvalue02"
OCI_SECRET = "PLANTEDociSECRETvalue03"
AZ_KEY = base64.b64encode(b"PLANTED-azure-account-key-value-04").decode()
SAS_SIG = "PLANTEDsasSIGvalue05"
CS_KEY = base64.b64encode(b"PLANTED-connection-string-key-06").decode()
GCP_KEY = "PLANTEDgcpPRIVATEkey07"
DRUID_PW = "PLANTEDdruidPASSWORD08"
SECRETS = [S3_SECRET, AWS_SECRET, OCI_SECRET, AZ_KEY, SAS_SIG, CS_KEY, GCP_KEY, DRUID_PW,
           base64.b64encode(f"druid:{DRUID_PW}".encode()).decode()]


@pytest.fixture
def planted(tmp_path, seaweed, azurite, fake_gcs):
    sa = tmp_path / "sa.json"
    sa.write_text(json.dumps({"type": "service_account", "project_id": "p", "private_key_id": "kid",
                              "private_key": f"-----BEGIN PRIVATE KEY-----\n{GCP_KEY}\n-----END PRIVATE KEY-----\n",
                              "client_email": "x@p.iam.gserviceaccount.com", "token_uri": "http://127.0.0.1:9/t"}))
    druid = OverlordDouble(s3=seaweed, username="druid", password="the-real-one")
    bucket = seaweed.create_bucket(fresh_name("sec"))
    container = azurite.create_container(fresh_name("sec"))
    s3 = f"endpoint_url = {seaweed.endpoint}\naccess_key = {seaweed.access_key}\nregion_name = us-east-1\n"
    common = "[COMMON]\nmax_retries = 1\nretry_timeout = 3\n"
    base = (common + f"[S3]\n{s3}secret_access_key = {S3_SECRET}\nbucket_name = {bucket}\n"
            f"[AWS]\n{s3}secret_access_key = {AWS_SECRET}\nbucket_name = {bucket}\n"
            f"[ORACLE]\n{s3}secret_access_key = {OCI_SECRET}\nbucket_name = {bucket}\n"
            f"[GCP]\nsecret_data = {sa}\nbucket_name = b\n"
            f"[DRUID]\nbatch_url = {druid.batch_url}\nusername = druid\npassword = {DRUID_PW}\n")
    azure = f"[AZURE]\naccount_name = {AZURITE_ACCOUNT}\ncontainer_name = {container}\nendpoint_url = {azurite.endpoint}\n"
    configs = {
        "key": base + azure + f"account_key = {AZ_KEY}\n",
        "sas": base + azure + f"sas_token = sv=2021-08-06&ss=b&srt=sco&sp=rwdlac&se=2030-01-01T00%3A00%3A00Z&sig={SAS_SIG}\n",
        "connection string": base + f"[AZURE]\ncontainer_name = {container}\nconnection_string = "
                                    f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={CS_KEY};"
                                    f"BlobEndpoint={azurite.endpoint};\n",
    }
    paths = {}
    for name, text in configs.items():
        p = tmp_path / f"{name.replace(' ', '-')}.ini"
        p.write_text(text)
        p.chmod(0o644)  # also exercises the readable-by-others warning
        paths[name] = p
    yield paths
    druid.close()


COMMANDS = [
    ["upload", str(EXAMPLE_DATA), "--json"],
    ["upload", str(EXAMPLE_DATA)],
    ["-vv", "upload", str(EXAMPLE_DATA / "sl_projects.json")],
    ["check"], ["check", "--json"], ["-vv", "check"],
    ["push", str(EXAMPLE_DATA / "sl_projects.json"), "--spec", str(EXAMPLE_DATA.parent / "specs" / "sl-project.json"),
     "--json", "--ingest-from", "S3"],
    ["druid", "status", "some-task-id"],
    ["providers", "--json"],
]


@pytest.mark.parametrize("flavour", ["key", "sas", "connection string"])
def test_no_command_prints_a_planted_secret(cli, planted, flavour):
    for command in COMMANDS:
        r = cli(*command, "--config", planted[flavour]) if command[0] != "providers" else cli(*command)
        for secret in SECRETS:
            assert secret not in r.text, (flavour, command, secret)
        assert "Traceback" not in r.text, (command, r.err)
    warned = cli("check", "--config", planted[flavour])
    assert "readable by other users" in warned.err and warned.code != 0  # wrong secrets: failures reported


def test_exceptions_and_reprs_hold_no_secret(planted, tmp_path):
    from ml_analytics.cloud_storage import MultiCloud
    from ml_analytics.errors import MLAnalyticsError

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "r.json").write_text("{}\n")
    for flavour, cfg in planted.items():
        mc = MultiCloud(cfg, sections=["S3", "AWS", "ORACLE", "AZURE"])
        with pytest.raises(MLAnalyticsError) as e:
            mc.upload_to_cloud("p", str(tmp_path / "out"), "r.json")
        text = str(e.value) + repr(e.value) + "".join(repr(p) for p in mc.providers().values())
        for r in e.value.results:
            text += repr(r)
        for secret in SECRETS:
            assert secret not in text, (flavour, secret)


def test_tls_verification_is_on_unless_turned_off_with_a_warning(cli, tmp_path):
    from ml_analytics.cloud_storage.s3 import S3

    on = S3(accessKey="a", secretAccessKey="b", bucketName="x", endpoint_url="https://s3.example.invalid")
    assert on.verify_tls and "allow_invalid_certificates" not in on.store.client_options
    cfg = tmp_path / "c.ini"
    cfg.write_text("[S3]\nendpoint_url = https://127.0.0.1:9\naccess_key = a\nsecret_access_key = b\n"
                   "bucket_name = x\nverify_tls = false\n[COMMON]\nmax_retries = 0\nretry_timeout = 1\n"
                   "[DRUID]\nbatch_url = https://127.0.0.1:9/druid/indexer/v1/task\nverify_tls = false\n")
    cfg.chmod(0o600)
    r = cli("check", "--config", cfg)
    assert "S3: TLS certificate verification is OFF" in r.err
    assert "DRUID: TLS certificate verification is OFF" in r.err


URL_PW = "PLANTEDurlPASSWORD09"


@pytest.mark.parametrize("section", ["S3", "AZURE"])
def test_a_password_inside_a_url_is_never_printed(cli, write_config, section):
    """endpoint_url = http://user:pw@host: unreachable on purpose, so the URL lands in an error."""
    if section == "S3":
        body = (f"[S3]\nendpoint_url = http://admin:{URL_PW}@127.0.0.1:9\naccess_key = a\nsecret_access_key = b\n"
                "bucket_name = bkt\n")
    else:
        body = (f"[AZURE]\naccount_name = acct\naccount_key = {AZ_KEY}\ncontainer_name = c\n"
                f"endpoint_url = http://admin:{URL_PW}@127.0.0.1:9/acct\n")
    cfg = write_config(body + "[COMMON]\nmax_retries = 0\nretry_timeout = 2\nconnect_timeout = 1\n")
    for args in (("upload", EXAMPLE_DATA / "sl_projects.json", "--json"), ("check", "--json"), ("check",),
                 ("-vv", "upload", EXAMPLE_DATA / "sl_projects.json")):
        r = cli(*args, "--config", cfg)
        assert r.code != 0
        assert URL_PW not in r.out + r.err, args
    assert "***@127.0.0.1:9" in r.err or "127.0.0.1:9" in r.err


def test_library_exceptions_hide_url_passwords():
    from ml_analytics.errors import ConfigError, NetworkError

    for exc in (NetworkError(f"cannot reach https://u:{URL_PW}@h", provider="S3"),
                ConfigError(f"bad https://u:{URL_PW}@h/x", section="DRUID", key="batch_url")):
        assert URL_PW not in str(exc) and "https://***@h" in str(exc)


@pytest.mark.parametrize("password", ["pa/ss-PLANTED", "pa#ss-PLANTED", "p@ss-PLANTED", "pa?ss-PLANTED"])
def test_a_raw_url_password_with_url_characters_is_masked_whole(password):
    from ml_analytics.errors import StorageError, redact

    url = f"http://admin:{password}@druid.example:8081/druid/indexer/v1/task"
    for text in (redact(f"cannot reach {url} (refused)"), str(StorageError(f"cannot reach {url}", provider="S3"))):
        assert "PLANTED" not in text and "ss-" not in text and "druid.example:8081" in text, text
