"""`ml-analytics scaffold provider`: a new cloud is one command plus filling in the upload. The test
scaffolds [ACME] into a copy of the fixture service role and a config.sample, fills the provider's
TODOs with a few lines of boto3 against SeaweedFS, runs the scaffolded conformance suite, then renders
config.ini through the edited role for ML_Cloud_Service_Provider == 'acme' with this project's role,
and uploads through the result."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_run import ROLES, SERVICE_ROLES, inventory, run_playbook
from conftest import fresh_name, run_cli

HERE = Path(__file__).resolve().parent

FILL_MODULE = {
    "ERROR_CODES: dict[str, type[StorageError]] = {}": [
        "from ml_analytics.errors import AuthenticationError, BucketNotFoundError  # noqa: E402",
        "ERROR_CODES: dict[str, type[StorageError]] = {",
        '    "NoSuchBucket": BucketNotFoundError, "InvalidAccessKeyId": AuthenticationError,',
        '    "SignatureDoesNotMatch": AuthenticationError}'],
    'raise NotImplementedError("[ACME] client(): TODO build the SDK client")': [
        "import boto3",
        'self._client = boto3.client("s3", endpoint_url=self.endpoint_url,',
        '                            region_name=self.region_name or "us-east-1",',
        "                            aws_access_key_id=self._secret_access_key,",
        "                            aws_secret_access_key=self._secret_secret_access_key)"],
    'raise NotImplementedError("[ACME] put_file: TODO send data to key, with its MD5")': [
        "import base64",
        "self.client().put_object(Bucket=self.bucket, Key=key, Body=data,",
        "                         ContentMD5=base64.b64encode(bytes.fromhex(src.md5)).decode())"],
    'raise NotImplementedError("[ACME] stat: TODO")': [
        "try:",
        "    head = self.client().head_object(Bucket=self.bucket, Key=key)",
        "except self.client().exceptions.ClientError as e:",
        '    if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:',
        "        return None",
        "    raise",
        "etag = head[\"ETag\"].strip('\"')",
        'return ObjectInfo(key, head["ContentLength"], etag=etag, md5=etag if len(etag) == 32 else None)'],
    'raise NotImplementedError("[ACME] list: TODO")': [
        'pages = self.client().get_paginator("list_objects_v2")',
        "for page in pages.paginate(Bucket=self.bucket, Prefix=self.list_prefix(prefix)):",
        '    for o in page.get("Contents", []):',
        "        yield ObjectInfo(o[\"Key\"], o[\"Size\"], etag=o[\"ETag\"].strip('\"'))"],
    'raise NotImplementedError("[ACME] delete: TODO")': [
        "self.client().delete_object(Bucket=self.bucket, Key=key)"],
}
FILL_TEST = {
    'raise NotImplementedError("TODO: read the object with the cloud\'s own SDK")': [
        "import boto3",
        's3 = boto3.client("s3", endpoint_url=os.environ["ML_ANALYTICS_ACME_ENDPOINT_URL"], region_name="us-east-1",',
        '                  aws_access_key_id=os.environ["ML_ANALYTICS_ACME_ACCESS_KEY"],',
        '                  aws_secret_access_key=os.environ["ML_ANALYTICS_ACME_SECRET_ACCESS_KEY"])',
        'return s3.get_object(Bucket=provider.bucket, Key=key)["Body"].read()'],
}


def fill(path: Path, blocks: dict[str, list[str]]) -> None:
    """Replace each marked line with code at the line's indentation, as a person filling the TODOs would."""
    lines = path.read_text().splitlines()
    for marker, code in blocks.items():
        (at,) = [i for i, line in enumerate(lines) if line.strip() == marker]
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
        lines[at:at + 1] = [indent + c for c in code]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    work = tmp_path_factory.mktemp("scaffold")
    role = work / "roles" / "ml-analytics-service"
    shutil.copytree(SERVICE_ROLES / "ml-analytics-service", role)
    sample = work / "config.sample"
    sample.write_text("[ORACLE]\n\nendpoint_url = {{ ml_ORACLE_endpoint_url }}\n\n"
                      "bucket_name = {{ ml_ORACLE_bucket_name }}\n")
    before = {p: p.read_bytes() for p in (role / "defaults" / "main.yml", role / "templates" / "config.j2", sample)}
    args = ("scaffold", "provider", "acme", "-o", work / "acme", "--role", role, "--config-sample", sample)
    dry = run_cli(*args, "--dry-run", cwd=work)
    assert dry.code == 0, dry.err
    assert not (work / "acme").exists() and all(p.read_bytes() == b for p, b in before.items())
    done = run_cli(*args, cwd=work)
    assert done.code == 0, done.err
    return {"work": work, "role": role, "sample": sample, "dry": dry, "done": done, "out": work / "acme"}


def test_dry_run_prints_everything_and_writes_nothing(scaffolded):
    dry = scaffolded["dry"].out
    for name in ("ml_analytics_acme.py (new)", "tests/test_ml_analytics_acme.py (new)", "config.sample (new)",
                 "ansible/defaults-main.yml (new)", "ansible/config.j2-branch (new)",
                 "ansible/ml-analytics-cloud.yml (new)", "defaults/main.yml (add variables)",
                 "templates/config.j2 (add branch)", f"{scaffolded['sample']} (add section)"):
        assert name in dry, name
    assert "class Acme(CloudProvider):" in dry and "{% elif ML_Cloud_Service_Provider is equalto 'acme' %}" in dry
    assert dry.rstrip().endswith("(dry run: nothing written)")


def test_it_writes_the_four_places_of_the_original_procedure(scaffolded):
    out, role = scaffolded["out"], scaffolded["role"]
    module = (out / "ml_analytics_acme.py").read_text()
    for method in ("def put_file(", "def stat(", "def list(", "def delete(", "def map_error("):
        assert method in module
    assert "\n    elif " not in module and "if section ==" not in module  # found by the registry: no if/elif
    sample = scaffolded["sample"].read_text()
    assert sample.startswith("[ORACLE]") and "[ACME]\n\nendpoint_url = {{ ml_ACME_endpoint_url }}\n" in sample
    defaults = (role / "defaults" / "main.yml").read_text()
    assert 'ml_ACME_secret_access_key: "{{ cloud_public_storage_secret }}"' in defaults
    assert 'ml_ACME_bucket_name: "{{ cloud_storage_telemetry_bucketname }}"' in defaults
    template = (role / "templates" / "config.j2").read_text()
    branch = template.index("{% elif ML_Cloud_Service_Provider is equalto 'acme' %}")
    assert template.index("is equalto 'aws' %}") < branch < template.index("{% else %}") < template.index("[AZURE]")
    assert "bucket_name = {{ ml_ACME_bucket_name }}" in template[branch:template.index("{% else %}")]
    role_vars = (out / "ansible" / "ml-analytics-cloud.yml").read_text()
    assert "ml_analytics_cloud_sections: {acme: ACME}" in role_vars
    assert f'ml_analytics_cloud_provider_files: ["{out / "ml_analytics_acme.py"}"]' in role_vars
    # a second run adds nothing twice and refuses to overwrite the provider without --force
    again = run_cli("scaffold", "provider", "acme", "-o", out, "--role", role, cwd=scaffolded["work"])
    assert again.code == 2 and "exists; pass --force" in again.err and again.err.count("\n") == 1
    forced = run_cli("scaffold", "provider", "acme", "-o", out, "--role", role, "--force", "--dry-run",
                     cwd=scaffolded["work"])
    assert "defaults/main.yml (unchanged (it has ml_ACME_* already))" in forced.out
    assert "config.j2 (unchanged (it has a 'acme' branch))" in forced.out


@pytest.mark.parametrize("args,message", [
    (("9lives",), "provider name '9lives': letters, digits and _"),
    (("aws",), "[AWS] is a built-in provider"),
    (("acme", "--key", "Bad-Key"), "--key Bad-Key: expected NAME[:required][:secret]"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    r = run_cli("scaffold", "provider", *args, cwd=tmp_path)
    assert r.code == 2 and message in r.err and r.err.count("\n") == 1 and "Traceback" not in r.err
    assert list(tmp_path.iterdir()) == []


def test_a_role_without_a_cloud_chain_is_refused_before_anything_is_written(tmp_path):
    role = tmp_path / "role"
    (role / "defaults").mkdir(parents=True)
    (role / "templates").mkdir()
    (role / "defaults" / "main.yml").write_text("---\n")
    (role / "templates" / "config.j2").write_text("[COMMON]\n")
    r = run_cli("scaffold", "provider", "acme", "-o", tmp_path / "acme", "--role", role, cwd=tmp_path)
    assert r.code == 2 and "no cloud chain" in r.err and "config.j2" in r.err
    assert not (tmp_path / "acme").exists() and (role / "defaults" / "main.yml").read_text() == "---\n"


@pytest.fixture(scope="module")
def filled(scaffolded, seaweed):
    out = scaffolded["out"]
    fill(out / "ml_analytics_acme.py", FILL_MODULE)
    fill(out / "tests" / "test_ml_analytics_acme.py", FILL_TEST)
    bucket = seaweed.create_bucket(fresh_name("acme"))
    env = {"ML_ANALYTICS_ACME_ENDPOINT_URL": seaweed.endpoint, "ML_ANALYTICS_ACME_ACCESS_KEY": seaweed.access_key,
           "ML_ANALYTICS_ACME_SECRET_ACCESS_KEY": seaweed.secret_key, "ML_ANALYTICS_ACME_REGION_NAME": "us-east-1",
           "ML_ANALYTICS_ACME_BUCKET_NAME": bucket}
    return {**scaffolded, "env": env, "bucket": bucket}


def test_the_filled_provider_passes_the_scaffolded_conformance_suite(filled):
    out = filled["out"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_ANALYTICS_")}
    env.update(filled["env"])
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"], cwd=out, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    summary = r.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    assert int(summary.split(" passed")[0].split()[-1]) >= 14, summary  # wrong keys, missing bucket, seed API too


def test_the_edited_role_renders_it_and_the_deployment_uploads_through_it(filled, seaweed, tmp_path):
    work = tmp_path
    config_path = work / "acme" / "ml-analytics-service"
    (config_path / "cloud_storage").mkdir(parents=True)
    host = {
        "cloud_service_provider": "acme", "config_path": str(config_path), "USER": "root", "ansible_become": False,
        "cloud_public_storage_endpoint": seaweed.endpoint, "cloud_public_storage_accountname": seaweed.access_key,
        "cloud_public_storage_secret": seaweed.secret_key, "cloud_public_storage_region": "us-east-1",
        "cloud_storage_telemetry_bucketname": filled["bucket"],
        # the lines scaffold wrote for this project's role
        "ml_analytics_cloud_sections": {"acme": "ACME"},
        "ml_analytics_cloud_provider_files": [str(filled["out"] / "ml_analytics_acme.py")],
        "ml_analytics_cloud_venv": sys.prefix, "ml_analytics_cloud_check_as_user": False,
    }
    played = run_playbook(HERE / "plays" / "render.yml", inventory(work / "inventory", {"acme": host}), work,
                          roles=[filled["role"].parent, ROLES])
    assert played.code == 0 and played.recap["acme"]["failed"] == 0, played.out[-5000:]
    assert "ok    [ACME] config valid (not contacted)" in played.out
    assert seaweed.secret_key not in played.out
    config = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
    config.read(config_path / "config.ini")
    assert [s for s in config.sections() if s in ("ORACLE", "AWS", "GCP", "AZURE", "ACME")] == ["ACME"]
    assert (config_path / "cloud_storage" / "ml_analytics_acme.py").is_file()
    online = run_cli("check", "--config", config_path / "config.ini", cwd=work)
    # (the [DRUID] of the fixture points at a closed port: only the store is asserted)
    assert f"ok    [ACME] bucket '{filled['bucket']}' reachable and writable" in online.out, online.out + online.err
    (work / "out").mkdir()
    (work / "out" / "sl_projects.json").write_text('{"project_id": "p1"}\n')
    up = run_cli("upload", work / "out" / "sl_projects.json", "--prefix", "projects/", "--config",
                 config_path / "config.ini", cwd=work)
    assert up.code == 0, up.err
    body = seaweed.boto3_client().get_object(Bucket=filled["bucket"], Key="projects/sl_projects.json")["Body"].read()
    assert body == b'{"project_id": "p1"}\n'
