"""``compat install`` for each ml-analytics-service release (5.1, 5.2, 6.0): the release detected from
the deployment's own modules and said, the release's exact API written, and the releases' jobs run
unchanged under the jobs' Python 3.8 venv. Release 6.0's jobs upload through ml-core-service's
pre-signed URLs, played by the stand-in (tests/mlcore_double.py) signing for SeaweedFS, Azurite and
fake-gcs-server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import fresh_name
from deployment import Deployment, clean_env, oracle_section
from mlcore_double import AzureSigner, GcsSigner, MLCoreDouble, S3Signer
from py38 import py38_or_skip

from ml_analytics.compat.install import MARKER, RELEASES
from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY


@pytest.fixture(scope="session")
def py38():
    return py38_or_skip()


TOKEN = "PLANTED-ml-core-internal-token-6a1d"




def _s3_keys(seaweed, bucket):
    return sorted(o["Key"] for o in seaweed.boto3_client().list_objects_v2(Bucket=bucket).get("Contents", []))


# -- detection and what is written ---------------------------------------------------------------------
@pytest.mark.parametrize("release", ["5.1", "5.2", "6.0"])
def test_the_release_is_detected_from_the_original_modules_and_said(tmp_path, release):
    dep = Deployment(tmp_path, "", release=release, values={"TOKEN": TOKEN, "CONTAINER": "c",
                                                             "ML_CORE_URL": "http://127.0.0.1:9/ml-core"})
    kept = {p.name: p.read_bytes() for p in dep.cloud_storage.iterdir() if p.name not in RELEASES[release]}
    r = dep.install("--force")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith(f"release {release} (detected: {dep.cloud_storage / 'cloud.py'}: "
                                               f"MultiCloud.upload_to_cloud(")
    written = sorted(p.name for p in dep.cloud_storage.glob("*.py") if p.read_text().startswith(MARKER))
    assert written == sorted(RELEASES[release])
    for name in written:
        assert f"for release {release};" in (dep.cloud_storage / name).read_text().splitlines()[0]
    for name, data in kept.items():  # 6.0's constants.py, py_cloud_migration.py, __init__.py: left alone
        if (dep.cloud_storage / name).is_file():
            assert (dep.cloud_storage / name).read_bytes() == data, name
    backups = list(dep.cloud_storage.glob("ml-analytics-compat-backup-*"))
    assert len(backups) == 1 and (backups[0] / "cloud.py").is_file()
    again = dep.install()  # re-run: the release recorded in our cloud.py, nothing rewritten
    assert again.returncode == 0 and again.stdout.startswith(f"release {release} (detected: recorded in ")
    assert all(line.startswith(("release", "unchanged", "ml-analytics")) for line in again.stdout.splitlines())


def test_the_api_of_each_release(tmp_path):
    """5.1 has upload_to_NVSK_cloud, 5.2 has not (it never had it), 6.0 takes both call forms."""
    apis = {}
    for release in ("5.1", "5.2", "6.0"):
        dep = Deployment(tmp_path / release, "", release=release,
                         values={"TOKEN": TOKEN, "CONTAINER": "c", "ML_CORE_URL": "http://127.0.0.1:9/ml-core"})
        assert dep.install("--force").returncode == 0
        code = ("import inspect, json, sys; sys.path.insert(0, sys.argv[1]); from cloud import MultiCloud\n"
                "print(json.dumps({n: str(inspect.signature(f)) for n, f in vars(MultiCloud).items() "
                "if not n.startswith('_')}))")
        out = subprocess.run([sys.executable, "-c", code, str(dep.cloud_storage)], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        apis[release] = json.loads(out.stdout)
    assert apis["5.1"] == {"upload_to_cloud": "(self, blob_Path, local_Path, file_Name)",
                           "upload_to_NVSK_cloud": "(self, blob_Path, local_Path, file_Name, customBucket=False)"}
    assert apis["5.2"] == {"upload_to_cloud": "(self, blob_Path, local_Path, file_Name)"}
    assert apis["6.0"] == {"upload_to_cloud": "(self, filesList=None, folderPathName=None, local_Path=None, "
                                              "blob_Path=None, file_Name=None)"}


def test_switching_a_deployment_from_5x_to_60_removes_our_5x_modules_only(tmp_path):
    dep = Deployment(tmp_path, "[ORACLE]\nbucket_name = b\n", release="5.2")
    assert dep.install("--force").returncode == 0
    r = dep.install("--release", "6.0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"release 6.0 (as asked (--release 6.0); note: recorded in " \
                                       f"{dep.cloud_storage / 'cloud.py'} by an earlier compat install says 5.2)"
    for name in ("aws.py", "gcp.py", "ms_azure.py", "oracle.py"):
        assert f"removed   {dep.cloud_storage / name}" in r.stdout and not (dep.cloud_storage / name).exists()
    assert (dep.cloud_storage / "py_cloud_migration.py").is_file()  # the deployment's own: left alone


def test_an_unrecognised_cloud_py_is_refused_without_release(tmp_path):
    dep = Deployment(tmp_path, "[ORACLE]\nbucket_name = b\n")
    (dep.cloud_storage / "cloud.py").write_text("class MultiCloud:\n    def push(self, what):\n        pass\n")
    r = dep.install("--force")
    assert r.returncode == 2 and "cannot tell which ml-analytics-service release" in r.stderr
    assert "pass --release 5.1, 5.2 or 6.0" in r.stderr and "Traceback" not in r.stderr
    assert dep.install("--force", "--release", "5.2").returncode == 0


# -- 5.2's jobs ------------------------------------------------------------------------------------------------
def test_release52_jobs_upload_and_have_no_nvsk_method(py38, seaweed, tmp_path):
    bucket = seaweed.create_bucket(fresh_name("r52"))
    dep = Deployment(tmp_path, oracle_section(seaweed, bucket), release="5.2")
    assert dep.install("--force").returncode == 0
    job = dep.run_job(py38)
    assert job.code == 0 and "python 3.8" in job.out and "job finished: projects" in job.out, job.err
    nvsk = dep.run_job(py38, script="urgent_data_metrics/imp_project_metrics.py")
    assert nvsk.code == 0, nvsk.err
    assert "has upload_to_NVSK_cloud: False" in nvsk.out
    assert _s3_keys(seaweed, bucket) == ["Manage_Learn_Data/micro_improvement/data.csv", "projects/sl_projects.json",
                                         "projects/sl_tasks.json"]
    body = seaweed.boto3_client().get_object(Bucket=bucket, Key="Manage_Learn_Data/micro_improvement/data.csv")
    assert body["Body"].read() == dep.outputs["data.csv"]


# -- 6.0's jobs through ml-core-service -------------------------------------------------------------------------
@pytest.fixture(params=["s3", "azure", "gcs"])
def store(request):
    """(name, bucket, signer, read(key) -> bytes) for each store ml-core-service may sign for."""
    if request.param == "s3":
        seaweed = request.getfixturevalue("seaweed")
        bucket = seaweed.create_bucket(fresh_name("r60"))
        client = seaweed.boto3_client()
        return ("s3", bucket, S3Signer(seaweed.endpoint, seaweed.access_key, seaweed.secret_key),
                lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read())
    if request.param == "azure":
        azurite = request.getfixturevalue("azurite")
        bucket = azurite.create_container(fresh_name("r60"))
        client = azurite.service_client().get_container_client(bucket)
        return ("azure", bucket, AzureSigner(azurite.endpoint, AZURITE_ACCOUNT, AZURITE_KEY),
                lambda key: client.download_blob(key).readall())
    fake_gcs = request.getfixturevalue("fake_gcs")
    bucket = fake_gcs.create_bucket(fresh_name("r60"))
    b = fake_gcs.client().bucket(bucket)
    return ("gcs", bucket, GcsSigner(request.getfixturevalue("gcs_gateway").endpoint,
                                     request.getfixturevalue("gcs_key")),
            lambda key: b.blob(key).download_as_bytes())


@pytest.fixture
def service(store):
    double = MLCoreDouble(store[2], TOKEN)
    yield double
    double.close()


def _release60(tmp_path, store, service) -> Deployment:
    dep = Deployment(tmp_path, release="6.0",
                     values={"TOKEN": TOKEN, "CONTAINER": store[1], "ML_CORE_URL": service.url})
    r = dep.install("--force")
    assert r.returncode == 0 and r.stdout.startswith("release 6.0 (detected: "), r.stderr
    assert "upload --json --to ML_CORE --config" in r.stdout and "warning" not in r.stderr
    return dep


def _response(job) -> dict:
    line = next(x for x in job.out.splitlines() if x.startswith("cloud upload response : "))
    return json.loads(line[len("cloud upload response : "):])


SCHEMES = {"s3": ("s3", "s3"), "azure": ("azure", "azure"), "gcs": ("google", "gs")}


def test_release60_jobs_upload_every_file_unchanged(py38, store, service, tmp_path):
    name, bucket, _, read = store
    dep = _release60(tmp_path, store, service)
    kind, scheme = SCHEMES[name]

    job = dep.run_job(py38, script="observations/pyspark_observation_status_batch.py")
    assert job.code == 0 and "job finished: observation status" in job.out, job.out + job.err
    assert "python 3.8 boto3 1.12.33" in job.out
    key = "observation/status/sl_observation_status.json"
    assert read(key) == dep.outputs["sl_observation_status.json"]
    assert f'ingest {{"type": "{kind}", "uris": ["{scheme}://{bucket}/{key}"]}}' in job.out

    nvsk = dep.run_job(py38, script="urgent_data_metrics/imp_project_metrics.py")
    assert nvsk.code == 0 and "job finished: nvsk" in nvsk.out, nvsk.out + nvsk.err
    response = _response(nvsk)
    assert list(response) == ["files", "status_code", "success", "folderPathName", "error"]
    assert (response["success"], response["status_code"], response["error"]) == (True, 200, "")
    assert response["folderPathName"] == "Manage_Learn_Data/micro_improvement/"
    for entry, file in zip(response["files"], ("micro_improvement.csv", "micro_improvement.json")):  # every file
        key = f"Manage_Learn_Data/micro_improvement/{file}"
        assert read(key) == dep.outputs[file]
        assert entry["file"] == key and entry["payload"] == {"sourcePath": key} and entry["status"] == "uploaded"
        assert entry["inputSource"] == {"type": kind, "uris": [f"{scheme}://{bucket}/{key}"]}
    assert len(response["files"]) == 2 and "?" not in json.dumps(response)  # no pre-signed URL in the dict

    prglevel = dep.run_job(py38, script="projects/pyspark_prj_status_prglevel.py")
    assert prglevel.code == 0 and "job finished: prglevel" in prglevel.out, prglevel.err
    key = "projects/distinctCount/ml_projects_distinctCount_prgmlevel.json"
    assert read(key) == dep.outputs["ml_projects_distinctCount_prgmlevel.json"]

    # a job 6.0 left on the 5.x keyword call (6.0's own cloud.py raised TypeError there)
    dashboard = dep.run_job(py38, script="projects/pyspark_submitted_programdashboard.py")
    assert dashboard.code == 0 and "job finished: program dashboard" in dashboard.out, dashboard.err
    assert read("program_dashboard/KA_submitted_2026-12-01.zip") == dep.outputs["KA_submitted_2026-12-01.zip"]
    for run in (job, nvsk, prglevel, dashboard):
        assert TOKEN not in run.out + run.err
        for url in service.issued:
            assert url.split("?", 1)[1] not in run.out + run.err


def test_release60_expired_urls_are_renewed(py38, store, service, tmp_path):
    name, bucket, _, read = store
    dep = _release60(tmp_path, store, service)
    service.expire_first = True  # both files' first URLs had expired when they were handed out
    nvsk = dep.run_job(py38, script="urgent_data_metrics/imp_project_metrics.py")
    assert nvsk.code == 0 and _response(nvsk)["success"] is True, nvsk.out + nvsk.err
    for file in ("micro_improvement.csv", "micro_improvement.json"):
        assert read(f"Manage_Learn_Data/micro_improvement/{file}") == dep.outputs[file]
    writes = [q["body"]["request"]["files"][0] for q in service.requests if q["body"]]
    assert sorted(writes) == sorted(["micro_improvement.csv", "micro_improvement.json"] * 2)


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_release60_wrong_token_fails_the_job_with_a_one_line_reason(py38, store, service, tmp_path):
    dep = _release60(tmp_path, store, service)
    service.token = "PLANTED-the-service-wants-another-token"
    job = dep.run_job(py38, script="observations/pyspark_observation_status_batch.py")
    assert "job finished" not in job.out and "ingest" not in job.out  # stopped at its success check
    errors = [line for line in job.err.splitlines() if line.startswith("ml-analytics: error: ")]
    assert len(errors) == 1, job.err
    assert errors[0].startswith("ml-analytics: error: upload_to_cloud: 1 of 1 file(s) not stored: "
                                "observation/status/sl_observation_status.json: ML_CORE bucket")
    assert "wrong credentials" in errors[0] and "401" in errors[0]
    response = _response(job)
    assert response["success"] is False and "inputSource" not in response["files"][0]
    assert response["files"][0]["status"] == "failed"
    assert TOKEN not in job.out + job.err and "PLANTED-the-service" not in job.out + job.err
    with pytest.raises(Exception):
        store[3]("observation/status/sl_observation_status.json")


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_release60_a_file_that_is_not_stored_is_never_reported(py38, store, service, tmp_path):
    """One file of two gets no URL (a short list): the job sees success False, the stored file with its
    inputSource, the other without, and the reason on stderr."""
    dep = _release60(tmp_path, store, service)
    service.short = 1
    nvsk = dep.run_job(py38, script="urgent_data_metrics/imp_project_metrics.py")
    assert "Cloud Upload Failed." in nvsk.out and "job finished" not in nvsk.out, nvsk.err
    response = _response(nvsk)
    assert response["success"] is False and response["status_code"] is None
    status = {e["file"].rsplit("/", 1)[1]: ("inputSource" in e, e["status"]) for e in response["files"]}
    assert sorted(status.values()) == [(False, "failed"), (True, "uploaded")]
    assert "none for this key" in response["error"] and "1 of 2 file(s) not stored" in nvsk.err


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_release60_without_ml_core_sections_the_job_fails_naming_them(py38, store, service, tmp_path):
    dep = _release60(tmp_path, store, service)
    text = dep.config.read_text().replace(f"url = {service.url}", "url =")
    dep.config.write_text(text)
    r = dep.install()
    assert "does not configure the upload through ml-core-service: it lacks [ML_CORE_SERVICE_URL] url" in r.stderr
    job = dep.run_job(py38, script="observations/pyspark_observation_status_batch.py")
    assert job.code != 0
    last = job.err.strip().splitlines()[-1]
    assert last.startswith("_ml_analytics_runner.CloudUploadError: ") or last.startswith(
        "cloud_storage._ml_analytics_runner.CloudUploadError: "), job.err
    assert "ML_CORE" in last and TOKEN not in job.err


def test_release60_shim_runs_with_the_original_config_as_cron_does(tmp_path):
    """The deployment's `check` with 6.0's config.ini: [ML_CORE] is configured by its own sections."""
    dep = Deployment(tmp_path, release="6.0", values={"TOKEN": TOKEN, "CONTAINER": "c",
                                                      "ML_CORE_URL": "http://127.0.0.1:9/ml-core"})
    r = subprocess.run([sys.executable, "-m", "ml_analytics", "check", "--offline", "--json", "--config",
                        str(dep.config)], capture_output=True, text=True, env=clean_env(), timeout=60)
    rows = {row["section"]: row for row in json.loads(r.stdout)["sections"]}
    assert rows["ML_CORE"]["status"] == "ok", rows
    assert not [row for row in rows.values() if row["status"] == "warning"], rows  # 6.0's sections are known
    assert TOKEN not in r.stdout + r.stderr
