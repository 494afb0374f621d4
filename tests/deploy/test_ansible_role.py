"""deploy/ansible's role, run for real with ansible-core against a temporary root laid out like the
service role's BASEPATH: the first run applies, the second changes nothing, a re-checkout of the
original modules by the service role is repaired by the next run, and a job then uploads through the
shims to SeaweedFS. The render test renders config.ini as the service role's config.j2 does, for every
ML_Cloud_Service_Provider value, adds this project's keys and has `ml-analytics check` accept it."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ansible", reason="ansible-core comes with the test extra: pip install -e '.[test]'")

from ansible_run import (PLAYBOOK, ROLES, SERVICE_ROLES, build_wheel, inventory, run_playbook,  # noqa: E402
                         seed_repository)
from conftest import fresh_name  # noqa: E402

from ml_analytics.compat.install import MARKER  # noqa: E402

HERE = Path(__file__).resolve().parent
SUNBIRD = HERE / "plays"  # not beside a roles/ folder: ansible-playbook would prefer that one
NVSK_KEY = "Manage_Learn_Data/micro_improvement/micro_improvement.json"
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nPLANTED-gcp-private-key-0123456789\n-----END PRIVATE KEY-----\n"
AZURE_KEY = "Zml4dHVyZS1ub3QtYS1yZWFsLWtleS0wMTIzNDU2Nzg5"  # base64, not a real key


def _base_python() -> str:
    return getattr(sys, "_base_executable", None) or sys.executable


def _service(where: Path) -> Path:
    return where / "opt" / "sparkjobs" / "ml-analytics-service"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, seaweed):
    """One deployment taken through: service play, role, role again, service play (re-checkout), role;
    the outcome of each step kept for the tests below."""
    work = tmp_path_factory.mktemp("ansible")
    wheel = build_wheel(work / "wheel", work / "sources")
    seed = seed_repository(work / "seed")
    root = work / "root"
    (root / "opt" / "sparkjobs").mkdir(parents=True)
    bucket = seaweed.create_bucket(fresh_name("oracle"))
    nvsk = seaweed.create_bucket(fresh_name("nvsk"))
    host = {
        # the service role's variables, as an inventory sets them (cloud_public_storage_endpoint "":
        # "not required in current release", as sunbird's sample inventory has it)
        "BASEPATH": str(root / "opt" / "sparkjobs"), "USER": "root", "ml_analytics_repo": str(seed),
        "cloud_service_provider": "ORACLE", "cloud_public_storage_endpoint": "",
        "cloud_public_storage_accountname": seaweed.access_key, "cloud_public_storage_secret": seaweed.secret_key,
        "cloud_public_storage_region": "us-east-1", "cloud_storage_telemetry_bucketname": bucket,
        # this role's
        "ml_analytics_cloud_venv": str(root / "opt" / "ml-analytics-cloud"), "ml_analytics_cloud_wheel": str(wheel),
        "ml_analytics_cloud_python": _base_python(), "ml_analytics_cloud_endpoint_url": seaweed.endpoint,
        "ml_analytics_cloud_nvsk_bucket_name": nvsk,
        # no sudo here, and no data-pipeline user: root runs everything
        "ansible_become": False, "ml_analytics_cloud_check_as_user": False,
    }
    hosts = inventory(work / "inventory", {"localhost": host})
    roles = [SERVICE_ROLES, ROLES]
    service = _service(root)
    steps = {}
    steps["service"] = run_playbook(SUNBIRD / "service.yml", hosts, work, roles=roles)
    assert steps["service"].code == 0, steps["service"].out[-3000:]
    for folder, files in (("projects/output", {"sl_projects.json": b'{"project_id": "p1"}\n',
                                               "sl_tasks.json": b'{"task_id": "t1"}\n'}),
                          ("urgent_data_metrics/output", {"micro_improvement.json": b'{"mi": 1}\n'})):
        (service / folder).mkdir(parents=True, exist_ok=True)
        for name, body in files.items():
            (service / folder / name).write_bytes(body)
    steps["first"] = run_playbook(PLAYBOOK, hosts, work, roles=roles)
    steps["first_state"] = _state(service)
    steps["second"] = run_playbook(PLAYBOOK, hosts, work, roles=roles)
    steps["again"] = run_playbook(SUNBIRD / "service.yml", hosts, work, roles=roles)
    steps["checked_out"] = _state(service)
    steps["third"] = run_playbook(PLAYBOOK, hosts, work, roles=roles)
    steps["third_state"] = _state(service)
    return {"steps": steps, "service": service, "bucket": bucket, "nvsk": nvsk, "seaweed": seaweed, "root": root}


def _state(service: Path) -> dict:
    config = service / "config.ini"
    return {"cloud.py": (service / "cloud_storage" / "cloud.py").read_text(), "config": config.read_text(),
            "mode": stat.S_IMODE(config.stat().st_mode)}


def _ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
    parser.read_string(text)
    return parser


def test_the_first_run_applies_the_drop_in_the_keys_and_the_mode(deployment):
    first = deployment["steps"]["first"]
    assert first.code == 0, first.out[-4000:]
    assert first.changed() > 0 and first.recap["localhost"]["failed"] == 0
    state = deployment["steps"]["first_state"]
    assert state["cloud.py"].startswith(MARKER)
    config = _ini(state["config"])
    assert config["ORACLE"]["endpoint_url"] == deployment["seaweed"].endpoint
    assert config["COMMON"]["nvsk_bucket_name"] == deployment["nvsk"]
    assert config["ORACLE"]["bucket_name"] == deployment["bucket"]  # the rest as the service role rendered it
    assert state["mode"] == 0o600
    assert "ok    [ORACLE] config valid (not contacted)" in first.out  # check --offline was the last step
    assert "1 ingestion spec(s) read azure://telemetry-data-store/" in first.out
    assert deployment["seaweed"].secret_key not in first.out


def test_a_second_run_changes_nothing(deployment):
    second = deployment["steps"]["second"]
    assert second.code == 0, second.out[-4000:]
    assert second.changed() == 0, second.out[-4000:]


def test_a_re_checkout_of_the_originals_is_repaired_by_the_next_run(deployment):
    checked_out = deployment["steps"]["checked_out"]
    assert checked_out["cloud.py"].startswith("# Test fixture: stands in")  # the service role undid it
    # ... and made config.ini 0755 again (its recursive chmod of BASEPATH runs before its render)
    assert "nvsk_bucket_name" not in checked_out["config"] and checked_out["mode"] == 0o755
    third = deployment["steps"]["third"]
    assert third.code == 0 and third.changed() > 0, third.out[-4000:]
    state = deployment["steps"]["third_state"]
    assert state["cloud.py"].startswith(MARKER)
    assert _ini(state["config"])["COMMON"]["nvsk_bucket_name"] == deployment["nvsk"] and state["mode"] == 0o600
    backups = list((deployment["service"] / "cloud_storage").glob("ml-analytics-compat-backup-*/cloud.py"))
    assert backups and all(b.read_text().startswith("# Test fixture: stands in") for b in backups)
    # the service role's config.ini backups (config.ini.<time>~) hold the same credentials: 0600 too
    olds = list(deployment["service"].glob("config.ini.*~"))
    assert olds and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in olds)


def test_a_job_then_uploads_through_the_shims(deployment):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat"))
    from py38 import find_python38, venv_python

    if find_python38() is None:
        pytest.skip("no Python 3.8 interpreter for the jobs (pyenv install 3.8)")
    py38 = venv_python()
    service = deployment["service"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_ANALYTICS_")}
    for what in ("projects", "nvsk"):
        job = subprocess.run([str(py38), str(service / "projects" / "pyspark_project_report.py"), what],
                             capture_output=True, text=True, cwd=deployment["root"], env=env, timeout=300)
        assert job.returncode == 0, job.stderr
        assert f"job finished: {what}" in job.stdout
    s3 = deployment["seaweed"].boto3_client()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=deployment["bucket"]).get("Contents", []))
    assert keys == ["projects/sl_projects.json", "projects/sl_tasks.json"]
    body = s3.get_object(Bucket=deployment["bucket"], Key="projects/sl_projects.json")["Body"].read()
    assert body == (service / "projects" / "output" / "sl_projects.json").read_bytes()
    assert s3.get_object(Bucket=deployment["nvsk"], Key=NVSK_KEY)["Body"].read() == b'{"mi": 1}\n'


def test_the_python_search_takes_the_first_that_is_new_enough_and_refuses_without_one(tmp_path):
    old = tmp_path / "bin" / "python-old"
    old.parent.mkdir()
    old.write_text("#!/bin/sh\nexit 1\n")  # answers the version probe as a Python < 3.10 does
    old.chmod(0o755)
    hosts = inventory(tmp_path / "inventory", {
        "found": {"ml_analytics_cloud_python_candidates": [str(old), _base_python()]},
        "none": {"ml_analytics_cloud_python_candidates": [str(old)], "ml_analytics_cloud_python_install": False},
    })
    played = run_playbook(SUNBIRD / "python.yml", hosts, tmp_path, roles=[ROLES])
    assert played.recap["found"]["failed"] == 0 and f"python: {_base_python()}" in played.out, played.out[-3000:]
    assert played.recap["none"]["failed"] == 1
    assert f"no Python >= 3.10 on this host (tried {old})" in played.out


# -- the render test -----------------------------------------------------------------------------------------
SERVICE_VARS = {
    # what sunbird's inventory sets for the service role's defaults to render
    "env_name": "fixture", "private_ingressgateway_ip": "127.0.0.1", "cloud_storage_url": "https://storage.example",
    "cloud_storage_samiksha_bucketname": "samiksha", "cloud_public_storage_region": "ap-mumbai-1",
    "cloud_public_storage_endpoint": "", "cloud_storage_telemetry_bucketname": "telemetry-data-store",
    "ml_analytics_mongodb_url": "127.0.0.1:9", "ml_analytics_kafka_url": "127.0.0.1:9",
    "ml_analytics_druid_url": "127.0.0.1:9", "ml_analytics_druid_rollup_url": "127.0.0.1:9",
    "ml_analytics_druid_query_url": "127.0.0.1:9", "USER": "root", "ansible_become": False,
    "ml_analytics_cloud_check_as_user": False, "ml_analytics_cloud_venv": sys.prefix,  # this venv's ml-analytics
}
PROVIDERS = {
    "ORACLE": ("ORACLE", {"cloud_public_storage_accountname": "0123456789abcdef0123456789abcdef01234567",
                          "cloud_public_storage_secret": "fixture-oci-secret-0123456789=",
                          "ml_analytics_cloud_endpoint_url":
                              "https://ns.compat.objectstorage.ap-mumbai-1.oraclecloud.com",
                          "ml_analytics_cloud_nvsk_bucket_name": "nvsk-reports"}),
    "aws": ("AWS", {"cloud_public_storage_accountname": "AKIAFIXTURE000000000",
                    "cloud_public_storage_secret": "fixture/aws+secret0123456789",
                    "cloud_public_storage_region": "us-east-1",
                    "ml_analytics_cloud_endpoint_url": "https://s3.internal.example:9000"}),
    "gcloud": ("GCP", {"cloud_public_storage_accountname": "sa@fixture.iam.gserviceaccount.com",
                       "cloud_public_storage_secret": "fixture-gcp-account-key-0123",
                       "ml_analytics_cloud_endpoint_url": "http://127.0.0.1:4443",
                       "ml_analytics_cloud_gcp_service_account": {
                           "type": "service_account", "project_id": "fixture", "client_email":
                           "sa@fixture.iam.gserviceaccount.com", "private_key": PRIVATE_KEY,
                           "token_uri": "https://oauth2.googleapis.com/token"}}),
    "azure": ("AZURE", {"cloud_public_storage_accountname": "fixtureaccount", "cloud_public_storage_secret": AZURE_KEY,
                        "ml_analytics_cloud_endpoint_url": "http://127.0.0.1:10000/fixtureaccount"}),
}


def _service_role(kind: str, where: Path) -> Path | None:
    """The roles folder holding an ml-analytics-service role: this test's fixture, or (when
    $ML_ANALYTICS_SUNBIRD_DEVOPS names a sunbird-devops checkout) that checkout's defaults and config.j2
    with the fixture's render tasks."""
    if kind == "fixture":
        return SERVICE_ROLES
    checkout = os.environ.get("ML_ANALYTICS_SUNBIRD_DEVOPS")
    if not checkout:
        return None
    real = Path(checkout) / "ansible" / "roles" / "ml-analytics-service"
    role = where / "roles" / "ml-analytics-service"
    for sub in ("defaults", "templates", "tasks"):
        (role / sub).mkdir(parents=True)
    shutil.copy2(real / "defaults" / "main.yml", role / "defaults" / "main.yml")
    shutil.copy2(real / "templates" / "config.j2", role / "templates" / "config.j2")
    shutil.copy2(SERVICE_ROLES / "ml-analytics-service" / "tasks" / "render.yml", role / "tasks" / "render.yml")
    return where / "roles"


@pytest.fixture(scope="module", params=["fixture", "sunbird-devops"])
def rendered(request, tmp_path_factory):
    work = tmp_path_factory.mktemp(f"render-{request.param}")
    roles = _service_role(request.param, work)
    if roles is None:
        pytest.skip("set ML_ANALYTICS_SUNBIRD_DEVOPS to a sunbird-devops checkout (release-5.1.0) to render its "
                    "config.j2 too")
    hosts = {}
    for value, (_, variables) in PROVIDERS.items():
        config_path = work / value / "ml-analytics-service"
        (config_path / "cloud_storage").mkdir(parents=True)
        hosts[value.lower()] = {**SERVICE_VARS, **variables, "cloud_service_provider": value,
                                "config_path": str(config_path),
                                "ml_analytics_cloud_gcp_key_file": str(work / value / "etc" / "gcp.json")}
    played = run_playbook(SUNBIRD / "render.yml", inventory(work / "inventory", hosts), work, roles=[roles, ROLES])
    return played, work


@pytest.mark.parametrize("value", list(PROVIDERS))
def test_the_rendered_config_is_accepted_by_check_for_every_provider(rendered, value, cli):
    played, work = rendered
    section, variables = PROVIDERS[value]
    assert played.recap[value.lower()]["failed"] == 0, played.out[-5000:]
    service = work / value / "ml-analytics-service"
    config = _ini((service / "config.ini").read_text())
    clouds = [s for s in config.sections() if s in ("ORACLE", "AWS", "GCP", "AZURE")]
    assert clouds == [section]  # exactly the section config.j2's chain renders for this value
    assert config[section]["endpoint_url"] == variables["ml_analytics_cloud_endpoint_url"]
    assert stat.S_IMODE((service / "config.ini").stat().st_mode) == 0o600
    if value == "ORACLE":
        assert config["COMMON"]["nvsk_bucket_name"] == "nvsk-reports"
    if value == "gcloud":  # the key from the variable, not the service role's {account_name, account_key}
        key_file = Path(config["GCP"]["secret_data"])
        assert key_file == work / value / "etc" / "gcp.json" and stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert json.loads(key_file.read_text())["private_key"] == PRIVATE_KEY
        assert "account_key" in json.loads((service / "cloud_secrets.json").read_text())  # left, unused
    r = cli("check", "--offline", "--json", "--config", service / "config.ini")
    assert r.code == 0, r.out + r.err
    rows = {row["section"]: row for row in r.json["sections"] if row["status"] != "warning"}
    assert rows[section]["status"] == "ok" and rows["DRUID"]["status"] == "ok"
    warnings = [row["message"] for row in r.json["sections"] if row["status"] == "warning"]
    if value == "azure":  # the specs name azure://telemetry-data-store/, which this deployment is
        assert warnings == []
    else:
        assert len(warnings) == 1 and "read azure://telemetry-data-store/, which is no configured store" in warnings[0]
    for secret in (variables["cloud_public_storage_secret"], "PLANTED-gcp-private-key"):
        assert secret not in played.out and secret not in r.out + r.err
