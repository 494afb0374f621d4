"""What a deployment engineer met on the way (#23): check comparing the Druid specs with the configured
stores, a query spec given to push, an all-empty cloud section, the GCP install hint, redaction of
paths, and warnings printed once per job run instead of once per upload call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ml_analytics.errors import MASK, ProviderNotInstalledError, redact

SPEC = {"type": "index", "spec": {
    "ioConfig": {"type": "index", "inputSource": {"type": "azure", "uris": ["azure://telemetry-data-store/projects/"
                                                                             "sl_projects.json"]},
                 "inputFormat": {"type": "json"}},
    "tuningConfig": {"type": "index", "partitionsSpec": {"type": "dynamic"}},
    "dataSchema": {"dataSource": "sl-project", "timestampSpec": {"column": "t", "format": "auto"},
                   "dimensionsSpec": {"dimensions": ["project_id"]}}}}
QUERY = {"queryType": "scan", "dataSource": "sl-observation", "resultFormat": "list", "columns": ["x"],
         "intervals": ["1901-01-01T00:00:00+00:00/2101-01-01T00:00:00+00:00"]}
ORACLE = ("[ORACLE]\nendpoint_url = http://127.0.0.1:9\naccess_key = AKIAFIXTURE\n"
          "secret_access_key = fixture-secret-0123456789\nregion_name = us-east-1\nbucket_name = {bucket}\n")


def _spec(source: dict) -> str:
    doc = json.loads(json.dumps(SPEC))
    doc["spec"]["ioConfig"]["inputSource"] = source
    return json.dumps(doc)


def _druid(**specs: str) -> str:
    return "[DRUID]\n" + "".join(f"{k} = {v}\n" for k, v in specs.items())


def _rows(run) -> list[dict]:
    return json.loads(run.out)["sections"]


def test_check_warns_when_specs_read_a_store_that_is_not_configured(cli, write_config):
    cfg = write_config(ORACLE.format(bucket="reports") + _druid(
        project_injestion_spec=json.dumps(SPEC),
        ml_survey_rollup_spec=_spec({"type": "azure", "uris": ["azure://telemetry-data-store/survey/rollup/r.json"]}),
        ok_spec=_spec({"type": "s3", "uris": ["s3://reports/projects/sl_projects.json"]}),
        prefix_spec=_spec({"type": "s3", "prefixes": ["s3://other-bucket/projects/"]}),
        observation_query_spec=json.dumps(QUERY)))
    r = cli("check", "--offline", "--json", "--config", cfg)
    assert r.code == 0, r.err  # a warning: the config itself is valid
    warnings = [row["message"] for row in _rows(r) if row["status"] == "warning"]
    assert len(warnings) == 2, warnings
    azure = next(w for w in warnings if "azure://telemetry-data-store/" in w)
    assert azure.startswith("2 ingestion spec(s) read azure://telemetry-data-store/, which is no configured store "
                            "([ORACLE] s3://reports/): project_injestion_spec, ml_survey_rollup_spec.")
    assert "push points a spec at the objects it uploaded" in azure and "the ml-analytics-service jobs do" in azure
    assert any("s3://other-bucket/" in w and "prefix_spec" in w for w in warnings)
    assert not any("ok_spec" in w or "query" in w for w in warnings)
    human = cli("check", "--offline", "--config", cfg)
    assert "warn  [DRUID] 2 ingestion spec(s) read azure://telemetry-data-store/" in human.out


@pytest.mark.parametrize("section,source", [
    ("[AZURE]\naccount_name = acct\ncontainer_name = telemetry-data-store\naccount_key = "
     "Zml4dHVyZS1ub3QtYS1yZWFsLWtleQ==\n", {"type": "azure", "uris": ["azure://telemetry-data-store/p/x.json"]}),
    ("[AZURE]\naccount_name = acct\ncontainer_name = telemetry-data-store\naccount_key = "
     "Zml4dHVyZS1ub3QtYS1yZWFsLWtleQ==\n",
     {"type": "azureStorage", "uris": ["azureStorage://acct/telemetry-data-store/p/x.json"]}),
    ("[GCP]\nbucket_name = reports\nendpoint_url = http://127.0.0.1:9\n",
     {"type": "google", "objects": [{"bucket": "reports", "path": "p/x.json"}]}),
    (ORACLE.format(bucket="reports"), {"type": "s3", "uris": ["s3://reports/p/x.json"]}),
])
def test_check_is_quiet_when_the_specs_read_the_configured_store(cli, write_config, section, source):
    cfg = write_config(section + _druid(project_injestion_spec=_spec(source)))
    r = cli("check", "--offline", "--json", "--config", cfg)
    assert r.code == 0 and not [row for row in _rows(r) if row["status"] == "warning"], r.out + r.err


def test_push_names_a_query_spec(cli, tmp_path, write_config):
    (tmp_path / "r.json").write_text("{}\n")
    cfg = write_config(f"[LOCAL]\nroot = {tmp_path / 'store'}\n" + _druid(observation_query_spec=json.dumps(QUERY)))
    r = cli("push", "r.json", "--spec", "observation_query_spec", "--config", cfg)
    assert r.code == 2 and r.err.count("\n") == 1
    assert "[DRUID] observation_query_spec: a Druid query spec (queryType 'scan'), not an ingestion task spec" in r.err
    assert not (tmp_path / "store").exists()  # refused before anything was uploaded


def test_an_all_empty_cloud_section_is_named(cli, tmp_path, write_config):
    (tmp_path / "r.json").write_text("{}\n")
    cfg = write_config("[ORACLE]\nendpoint_url =\naccess_key =\nsecret_access_key =\nregion_name =\nbucket_name =\n")
    r = cli("upload", "r.json", "--config", cfg)
    assert r.code == 2 and "Traceback" not in r.err
    assert f"{cfg}: [ORACLE]: every value is empty, so no storage provider is configured; fill in its keys " \
           f"(endpoint_url, access_key, secret_access_key, region_name, bucket_name)" in r.err
    c = cli("check", "--offline", "--config", cfg)
    assert c.code == 2 and "FAIL  [ORACLE] every value is empty" in c.err


def test_gcp_without_its_extra_gives_the_install_hint(monkeypatch, tmp_path):
    from ml_analytics.cloud_storage.gcp import GCP

    monkeypatch.setitem(sys.modules, "google_crc32c", None)  # as if the [gcp] extra were not installed
    (tmp_path / "r.json").write_text("{}\n")
    gcp = GCP(secret_data=None, bucketName="reports", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(ProviderNotInstalledError, match=r"pip install 'ml-analytics-cloud\[gcp\]'"):
        gcp.put_file(tmp_path / "r.json", "p/r.json")


def test_redaction_keeps_paths_and_words_that_contain_a_short_secret():
    long = "PLANTED-s3cr3t-VALUE-0123"  # long values: masked wherever they occur, paths included
    assert redact(f"/tmp/{long}/r.json and x{long}y", [long]) == f"/tmp/{MASK}/r.json and x{MASK}y"
    secrets = ["test"]
    assert redact("cannot read /tmp/x/test/r.json: no such file", secrets) == \
        "cannot read /tmp/x/test/r.json: no such file"
    uri = "stored at file:///tmp/test/b/r.json; latest"
    assert redact(uri, secrets) == uri
    assert redact("key test refused; Credential=test/20260101; https://h/test/x; 'test'", secrets) == \
        f"key {MASK} refused; Credential={MASK}/20260101; https://h/{MASK}/x; '{MASK}'"
    assert redact("/tmp/a?X-Amz-Credential=test", secrets) == f"/tmp/a?X-Amz-Credential={MASK}"


def test_a_path_holding_the_access_key_is_shown_whole(cli, tmp_path, write_config):
    folder = tmp_path / "minio"  # a short access key, as test and private stores often have
    folder.mkdir()
    cfg = write_config(ORACLE.format(bucket="reports").replace("AKIAFIXTURE", "minio"))
    r = cli("upload", str(folder / "missing.json"), "--config", cfg)
    assert r.code == 2 and f"{folder / 'missing.json'}" in r.err, r.err


def test_warnings_are_printed_once_per_job_run(tmp_path):
    """A job uploading three files through the compat modules: the config's permission warning reaches
    the job's log once, not once per upload call (each call is its own ml-analytics process)."""
    service = tmp_path / "ml-analytics-service"
    (service / "out").mkdir(parents=True)
    for name in ("a.json", "b.json", "c.json"):
        (service / "out" / name).write_text("{}\n")
    config = service / "config.ini"
    config.write_text(f"[LOCAL]\nroot = {tmp_path / 'store'}\n[SLACK]\ntoken = fixture-token-0123\n")
    config.chmod(0o644)
    r = subprocess.run([sys.executable, "-m", "ml_analytics", "compat", "install", str(service / "cloud_storage")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    job = ("import sys; sys.path.insert(0, sys.argv[1]); from cloud import MultiCloud\n"
           "mc = MultiCloud()\n"
           "for name in ('a.json', 'b.json', 'c.json'): mc.upload_to_cloud('p', sys.argv[2], name)\n"
           "import _ml_analytics_runner; print(_ml_analytics_runner.WARNINGS_FILE)\n")
    runs = [subprocess.run([sys.executable, "-c", job, str(service / "cloud_storage"), str(service / "out")],
                           capture_output=True, text=True, timeout=120) for _ in range(2)]
    for run in runs:  # each job run says it once
        assert run.returncode == 0, run.stderr
        assert run.stderr.count("is readable by other users") == 1, run.stderr
    assert sorted(p.name for p in (tmp_path / "store" / "ml-analytics" / "p").iterdir()) == ["a.json", "b.json",
                                                                                            "c.json"]
    files = [Path(run.stdout.strip()) for run in runs]
    assert files[0] != files[1] and not any(f.exists() for f in files)  # one per run, removed when the job ends
