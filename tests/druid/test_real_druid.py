"""The Druid handoff proven on a real Apache Druid (see conftest.py), each test counting rows through SQL.

Stores are the session's real servers: SeaweedFS for [S3] / [ORACLE] / [AWS], Azurite for [AZURE],
a folder for [LOCAL]. GCS stays on the double (tests/test_druid.py): Druid's Google extension cannot
be pointed at an emulator.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import uuid

import pytest
from conftest import EXAMPLE_DATA, fresh_name

from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY

# The first test also waits for the session's Druid: laid out by Maven (minutes on a cold ~/.m2) and
# started (about half a minute); every push below has its own --timeout.
pytestmark = pytest.mark.timeout(1200)

ROWS = 300  # examples/data/sl_projects.json
DATA = EXAMPLE_DATA / "sl_projects.json"
SPEC = json.loads((EXAMPLE_DATA.parent / "specs" / "sl-project.json").read_text())

# The deployment's own shape: a one-line native `index` task reading `azure` URIs, plain dimensions.
DEPLOYMENT_SPEC = {
    "type": "index",
    "spec": {
        "ioConfig": {"type": "index", "inputSource": {"type": "azure", "uris": [
            "azure://telemetry-data-store/projects/sl_projects.json"]},
                     "inputFormat": {"type": "json"}, "appendToExisting": False},
        "tuningConfig": {"type": "index", "partitionsSpec": {"type": "dynamic"}, "maxRowsInMemory": 75000},
        "dataSchema": {
            "dataSource": "sl-project",
            "granularitySpec": {"type": "uniform", "queryGranularity": "none", "rollup": False,
                                "segmentGranularity": "DAY"},
            "timestampSpec": {"column": "project_updated_date", "format": "auto"},
            "dimensionsSpec": {"dimensions": ["project_title", "project_id", "program_name", "state_name",
                                              "district_name", "status_of_project", "task_id"]},
            "metricsSpec": []}}}


# The deployment keeps native queries beside the ingestion specs in [DRUID].
QUERY_SPEC = {"queryType": "scan", "dataSource": "sl-observation", "intervals": ["1901-01-01/2101-01-01"],
              "columns": ["userId"], "resultFormat": "list"}


def _spec(base: dict, datasource: str) -> dict:
    spec = json.loads(json.dumps(base))
    spec["spec"]["dataSchema"]["dataSource"] = datasource
    return spec


def store_section(section, tmp_path, seaweed, azurite):
    if section == "LOCAL":
        return f"[LOCAL]\nroot = {tmp_path / 'store'}\n"
    if section in ("AWS", "ORACLE", "S3"):
        bucket = seaweed.create_bucket(fresh_name(section.lower()))
        extra = "namespace = testns\n" if section == "ORACLE" else ""
        return (f"[{section}]\nendpoint_url = {seaweed.endpoint}\naccess_key = {seaweed.access_key}\n"
                f"secret_access_key = {seaweed.secret_key}\nregion_name = us-east-1\nbucket_name = {bucket}\n"
                + extra)
    container = azurite.create_container(fresh_name("az"))
    return (f"[AZURE]\naccount_name = {AZURITE_ACCOUNT}\ncontainer_name = {container}\n"
            f"account_key = {AZURITE_KEY}\nendpoint_url = {azurite.endpoint}\n")


def write_config(tmp_path, real_druid, store: str, spec: dict, druid_extra: str = "", batch_url=None) -> os.PathLike:
    p = tmp_path / "config.ini"
    p.write_text("[COMMON]\nmax_retries = 2\n" + store + "[DRUID]\n"
                 f"batch_url = {batch_url or real_druid.task_url}\n"
                 f"urlQuery = {real_druid.query_url}\n"  # the deployment's form: .../druid/v2?pretty
                 f"project_injestion_spec = {json.dumps(spec)}\n"
                 f"observation_query_spec = {json.dumps(QUERY_SPEC)}\n" + druid_extra)
    p.chmod(0o600)
    return p


def count(real_druid, datasource: str, want: int | None = None, wait: float = 180) -> int:
    """The datasource's rows through SQL; with ``want``, polled until the count is that (or ``wait`` ends):
    Druid serves a task's segments some time after the task ends (seconds idle, minutes on a busy machine)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            rows = real_druid.sql(f'SELECT COUNT(*) AS c FROM "{datasource}"')
            c = rows[0]["c"] if rows else 0
        except urllib.error.HTTPError as e:  # 400 "Object not found" while no segment of it is served
            if e.code != 400:
                raise
            c = 0
        if want is None or c == want or time.monotonic() > deadline:
            return c
        time.sleep(1)


def bucket_of(cfg) -> str:
    text = open(cfg).read()
    key = "bucket_name = " if "bucket_name = " in text else "container_name = "
    return text.split(key)[1].splitlines()[0]


@pytest.mark.parametrize("section", ["LOCAL", "S3", "ORACLE", "AWS"])
def test_push_counts_rows_through_druid_sql(cli, tmp_path, seaweed, azurite, real_druid, section):
    ds = fresh_name("push")
    cfg = write_config(tmp_path, real_druid, store_section(section, tmp_path, seaweed, azurite), _spec(SPEC, ds))
    r = cli("push", DATA, "--prefix", "projects/", "--spec", "project_injestion_spec", "--config", cfg,
            "--json", "--timeout", "300")
    assert r.code == 0, r.err + r.out
    d = r.json["druid"]
    assert d["status"] == "SUCCESS", d
    assert d["rows"] == ROWS and d["expected_rows"] == ROWS
    assert count(real_druid, ds, ROWS) == ROWS
    source = json.loads((tmp_path / d["spec_path"]).read_text())["spec"]["ioConfig"]["inputSource"]
    assert source["type"] == {"LOCAL": "local"}.get(section, "s3")
    assert ("endpointConfig" in source) == (section in ("S3", "ORACLE"))
    assert seaweed.secret_key not in (tmp_path / d["spec_path"]).read_text()


def test_push_over_http_with_presigned_urls(cli, tmp_path, seaweed, azurite, real_druid):
    ds = fresh_name("http")
    cfg = write_config(tmp_path, real_druid, store_section("S3", tmp_path, seaweed, azurite), _spec(SPEC, ds))
    r = cli("push", DATA, "--spec", "project_injestion_spec", "--config", cfg, "--json", "--timeout", "300",
            "--input-source", "http")
    assert r.code == 0, r.err + r.out
    assert r.json["druid"]["status"] == "SUCCESS" and r.json["druid"]["input_source"] == "http"
    assert count(real_druid, ds, ROWS) == ROWS


def test_deployment_spec_from_azurite_keeps_azure_type(cli, tmp_path, seaweed, azurite, real_druid):
    """The deployment's one-line `index` spec with an `azure` inputSource, read by Druid from Azurite."""
    ds = fresh_name("deploy")
    cfg = write_config(tmp_path, real_druid, store_section("AZURE", tmp_path, seaweed, azurite),
                       _spec(DEPLOYMENT_SPEC, ds))
    r = cli("push", DATA, "--prefix", "projects/", "--spec", "project_injestion_spec", "--config", cfg,
            "--timeout", "300")
    assert r.code == 0, r.err + r.out
    assert f"SUCCESS, {ROWS} rows" in r.out
    assert count(real_druid, ds, ROWS) == ROWS
    task = json.loads((tmp_path / "druid-tasks" / f"{ds}.json").read_text())
    assert task["type"] == "index"
    assert task["spec"]["ioConfig"]["inputSource"]["type"] == "azure"
    # a finished task: its final status only (Druid 33 keeps runnerStatusCode WAITING after SUCCESS)
    assert r.err.splitlines()[-1].endswith(" is SUCCESS") and "SUCCESS/" not in r.err, r.err


def test_append_then_replace_changes_the_row_count(cli, tmp_path, seaweed, azurite, real_druid):
    ds = fresh_name("append")
    cfg = write_config(tmp_path, real_druid, store_section("LOCAL", tmp_path, seaweed, azurite), _spec(SPEC, ds))
    args = ("push", DATA, "--spec", "project_injestion_spec", "--config", cfg, "--json", "--timeout", "300")
    first = cli(*args)
    assert first.code == 0 and first.json["druid"]["rows"] == ROWS, first.err
    appended = cli(*args, "--append")
    assert appended.code == 0, appended.err
    assert appended.json["druid"]["rows"] == 2 * ROWS
    assert count(real_druid, ds, 2 * ROWS) == 2 * ROWS
    replaced = cli(*args, "--replace")
    assert replaced.code == 0, replaced.err
    assert replaced.json["druid"]["rows"] == ROWS
    assert count(real_druid, ds, ROWS) == ROWS


def test_ingest_objects_already_in_storage_and_druid_status(cli, tmp_path, seaweed, azurite, real_druid):
    ds = fresh_name("ingest")
    cfg = write_config(tmp_path, real_druid, store_section("AWS", tmp_path, seaweed, azurite), _spec(SPEC, ds))
    bucket = bucket_of(cfg)
    seaweed.boto3_client().upload_file(str(DATA), bucket, "already/sl_projects.json")
    r = cli("ingest", "--uri", f"s3://{bucket}/already/sl_projects.json", "--spec", "project_injestion_spec",
            "--config", cfg, "--json", "--timeout", "300")
    assert r.code == 0, r.err + r.out
    d = r.json["druid"]
    assert d["status"] == "SUCCESS" and d["rows"] == ROWS
    status = cli("druid", "status", d["task"], "--config", cfg)
    assert status.code == 0, status.err
    assert status.out.startswith(f"{d['task']}: SUCCESS")
    as_json = cli("druid", "status", d["task"], "--config", cfg, "--json")
    assert as_json.json["status"]["statusCode"] == "SUCCESS"
    unknown = cli("druid", "status", "index_no_such_task_" + uuid.uuid4().hex, "--config", cfg)
    assert unknown.code != 0 and "no task with id" in unknown.err and "Traceback" not in unknown.err
    check = cli("check", "--config", cfg)
    assert check.code == 0, check.err + check.out
    assert "1 ingestion spec(s) valid; skipped 1 query spec(s)" in check.out and "reachable" in check.out


def test_missing_object_fails_with_druids_own_message(cli, tmp_path, seaweed, azurite, real_druid):
    ds = fresh_name("missing")
    cfg = write_config(tmp_path, real_druid, store_section("S3", tmp_path, seaweed, azurite), _spec(SPEC, ds))
    r = cli("ingest", "--uri", f"s3://{bucket_of(cfg)}/projects/not-there.json", "--spec",
            "project_injestion_spec", "--config", cfg, "--json", "--timeout", "300")
    assert r.code == 1, r.err + r.out
    d = r.json["druid"]
    assert d["status"] == "FAILED"
    # Druid's errorMsg is a stack trace; shown as its message and root cause, on one line
    assert "Error occurred while trying to read uri" in d["errorMsg"] and "not-there.json" in d["errorMsg"], d
    assert "NoSuchKey" in d["errorMsg"] and "\n" not in d["errorMsg"], d
    status = cli("druid", "status", d["task"], "--config", cfg)
    assert status.code == 1 and "FAILED" in status.out


def test_bad_spec_refused_by_druid_is_one_line(cli, tmp_path, seaweed, azurite, real_druid):
    spec = _spec(SPEC, fresh_name("bad"))
    spec["spec"]["dataSchema"]["granularitySpec"]["segmentGranularity"] = "FORTNIGHT"
    cfg = write_config(tmp_path, real_druid, store_section("LOCAL", tmp_path, seaweed, azurite), spec)
    r = cli("push", DATA, "--spec", "project_injestion_spec", "--config", cfg, "--timeout", "60")
    assert r.code != 0
    lines = [ln for ln in r.err.splitlines() if "DRUID refused the task" in ln]
    assert len(lines) == 1, r.err
    assert "FORTNIGHT" in lines[0] and "Traceback" not in r.err
    as_json = cli("push", DATA, "--spec", "project_injestion_spec", "--config", cfg, "--json", "--timeout", "60")
    assert as_json.code != 0
    doc = as_json.json  # the uploads are still reported, with Druid's refusal beside them
    assert doc["summary"]["uploaded"] + doc["summary"].get("skipped", 0) >= 1
    assert doc["druid"]["status"] == "ERROR" and "FORTNIGHT" in doc["druid"]["errorMsg"]


def test_timeout_shuts_down_a_running_task(cli, tmp_path, real_druid):
    """Druid reads from an S3 endpoint that accepts connections and never answers: the task is really
    RUNNING (its S3 client waiting) when --timeout ends the wait and shuts it down."""
    ds = fresh_name("timeout")
    stall = socket.create_server(("127.0.0.1", 0), backlog=64)  # never accepts: requests hang
    port = stall.getsockname()[1]
    store = (f"[S3]\nendpoint_url = http://127.0.0.1:{port}\naccess_key = k\nsecret_access_key = s\n"
             f"region_name = us-east-1\nbucket_name = stalled\n")
    cfg = write_config(tmp_path, real_druid, store, _spec(SPEC, ds))
    try:
        r = cli("ingest", "--uri", "s3://stalled/projects/rows.json", "--spec", "project_injestion_spec",
                "--config", cfg, "--json", "--timeout", "10")
        assert r.code == 1, r.err + r.out
        d = r.json["druid"]
        assert d["status"] == "TIMEOUT" and "RUNNING/RUNNING" in d["errorMsg"] and "shut down" in d["errorMsg"]
    finally:
        stall.close()  # whatever Druid's thread still waits on now fails at once
    deadline = time.monotonic() + 90
    while True:
        status = cli("druid", "status", d["task"], "--config", cfg, "--json")
        if status.json["status"]["statusCode"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status.json["status"]["statusCode"] == "FAILED", status.out
    assert status.json["status"]["errorMsg"] == "Shutdown request from user"


def test_unparseable_rows_dropped_by_druid_are_reported(cli, tmp_path, seaweed, azurite, real_druid):
    """Druid ends SUCCESS after dropping a line it cannot parse; the push says so and exits 1."""
    ds = fresh_name("unparseable")
    cfg = write_config(tmp_path, real_druid, store_section("LOCAL", tmp_path, seaweed, azurite), _spec(SPEC, ds))
    data = tmp_path / "rows.json"
    data.write_text("".join(DATA.read_text().splitlines(keepends=True)[:5]) + "{not json\n")
    r = cli("push", data, "--spec", "project_injestion_spec", "--config", cfg, "--json", "--timeout", "300")
    assert r.code == 1, r.err + r.out
    d = r.json["druid"]
    assert d["status"] == "INCOMPLETE" and d["rows"] == 5 and "1 unparseable" in d["errorMsg"], d
    assert count(real_druid, ds, 5) == 5


def test_ingest_from_a_write_partitions_manifest(cli, tmp_path, seaweed, azurite, real_druid, spark):
    """Spark executors write 4 partitions to SeaweedFS; Druid ingests exactly the manifest's objects and
    the row count is checked against the manifest's."""
    from ml_analytics.spark import write_partitions

    ds = fresh_name("spark")
    cfg = write_config(tmp_path, real_druid, store_section("S3", tmp_path, seaweed, azurite), _spec(SPEC, ds))
    df = spark.read.json(str(DATA)).repartition(4)
    manifest = write_partitions(df, "projects/spark", config=str(cfg))
    assert manifest.rows == ROWS and len(manifest.objects) == 4
    r = cli("ingest", "--manifest", manifest.uri, "--spec", "project_injestion_spec", "--config", cfg, "--json",
            "--timeout", "300")
    assert r.code == 0, r.err + r.out
    d = r.json["druid"]
    assert d["status"] == "SUCCESS" and d["rows"] == d["expected_rows"] == ROWS
    assert count(real_druid, ds, ROWS) == ROWS
    source = json.loads((tmp_path / d["spec_path"]).read_text())["spec"]["ioConfig"]["inputSource"]
    bucket = bucket_of(cfg)
    assert sorted(source["uris"]) == sorted(f"s3://{bucket}/{k}" for k in manifest.keys)


def test_the_example_plugin_through_spark_and_a_real_druid(cli, tmp_path, seaweed, real_druid, spark):
    """#20's proof that a store outside the tree needs nothing in druid/ or spark/: the example plugin
    (PRESIGNED, examples/provider-plugin, installed by the README's test command) declares ReadBack and
    SignedUrls only. Spark executors write to it, the manifest is read back through it, and a real Druid
    ingests the manifest's objects through the pre-signed URLs it signs."""
    pytest.importorskip("ml_analytics_presigned")
    import sys

    from ml_analytics.spark import write_partitions

    sys.path.insert(0, str(EXAMPLE_DATA.parents[1] / "examples" / "provider-plugin" / "tests"))
    from signing_service import SigningService

    bucket = seaweed.create_bucket(fresh_name("plugin"))
    service = SigningService(seaweed.boto3_client(), bucket, "PLANTED-plugin-token-77")
    try:
        ds = fresh_name("plugin")
        store = (f"[PRESIGNED]\nservice_url = {service.url}\ntoken = PLANTED-plugin-token-77\n"
                 f"bucket_name = {bucket}\n")
        cfg = write_config(tmp_path, real_druid, store, _spec(SPEC, ds))
        df = spark.read.json(str(DATA)).repartition(3)
        manifest = write_partitions(df, "projects/plugin", config=str(cfg))
        assert manifest.rows == ROWS and len(manifest.objects) == 3
        s3 = seaweed.boto3_client()
        stored = [json.loads(line) for k in manifest.keys
                  for line in s3.get_object(Bucket=bucket, Key=k)["Body"].read().splitlines()]
        assert len(stored) == ROWS
        r = cli("ingest", "--manifest", manifest.uri, "--spec", "project_injestion_spec", "--config", cfg,
                "--json", "--timeout", "300")
        assert r.code == 0, r.err + r.out
        d = r.json["druid"]
        assert d["input_source"] == "http" and d["status"] == "SUCCESS" and d["rows"] == d["expected_rows"] == ROWS
        assert count(real_druid, ds, ROWS) == ROWS
        assert "PLANTED-plugin-token-77" not in r.out + r.err
    finally:
        service.close()


def test_a_resubmitted_task_is_not_ingested_twice(tmp_path, real_druid):
    """A submission retried after its answer was lost: the task carries its own id, so Druid refuses
    the second copy ("already exists") and the client takes that as the first one having got in."""
    from ml_analytics.druid.handoff import build_task
    from ml_analytics.druid.overlord import OverlordClient
    from ml_analytics.retry import RetryPolicy
    from ml_analytics.cloud_storage.local import Local

    ds = fresh_name("twice")
    store = Local(root=str(tmp_path / "store"))
    store.put_file(DATA, "p/sl_projects.json")
    task = build_task(_spec(SPEC, ds), store, ["p/sl_projects.json"], append=True, azure_input_source="azure")
    task["id"] = f"index_parallel_{ds}_ml-analytics_{uuid.uuid4().hex}"
    client = OverlordClient(real_druid.task_url, retry=RetryPolicy(max_retries=1))
    first = client.submit(task)
    again = client.submit(task)  # what a retry after a lost answer sends
    assert first == again == task["id"]
    deadline = time.time() + 120
    while time.time() < deadline and client.status(first).status not in ("SUCCESS", "FAILED"):
        time.sleep(1)
    assert client.status(first).status == "SUCCESS"
    assert count(real_druid, ds, ROWS) == ROWS  # once, not twice


# -- what this task ingested (#22): judged by the task's own report, not the datasource's count ------------------
def test_the_readme_main_example_ingests_every_row(cli, tmp_path, real_druid):
    """`ml-analytics push examples/data --prefix projects/ --spec examples/specs/sl-project.json`, the README's
    main command, with a Druid configured: every row of every file pushed is ingested."""
    cfg = write_config(tmp_path, real_druid, f"[LOCAL]\nroot = {tmp_path / 'store'}\n", SPEC)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(_spec(SPEC, fresh_name("main"))))
    r = cli("push", EXAMPLE_DATA, "--prefix", "projects/", "--spec", spec, "--config", cfg, "--json",
            "--timeout", "300")
    assert r.code == 0, r.err + r.out
    d = r.json["druid"]
    files = [p for p in EXAMPLE_DATA.rglob("*.json")]
    rows = sum(len(p.read_text().splitlines()) for p in files)
    assert d["status"] == "SUCCESS" and d["ingested"]["processed"] == rows == d["rows"]
    assert d["ingested"]["unparseable"] == 0


def test_a_missing_local_file_into_an_existing_datasource_fails_naming_it(cli, tmp_path, real_druid):
    ds = fresh_name("missing")
    cfg = write_config(tmp_path, real_druid, f"[LOCAL]\nroot = {tmp_path / 'store'}\n", _spec(SPEC, ds))
    first = cli("push", DATA, "--spec", "project_injestion_spec", "--config", cfg, "--json", "--timeout", "300")
    assert first.code == 0 and count(real_druid, ds, ROWS) == ROWS, first.err
    missing = tmp_path / "store" / "ml-analytics" / "missing.json"
    r = cli("ingest", "--uri", missing.as_uri(), "--spec", "project_injestion_spec", "--config", cfg, "--json",
            "--timeout", "300")
    assert r.code == 2 and str(missing) in r.err and "does not exist" in r.err, r.err + r.out
    assert count(real_druid, ds, ROWS) == ROWS


def test_replacing_with_zero_rows_is_incomplete_whatever_the_datasource_holds(cli, tmp_path, real_druid):
    ds = fresh_name("zero")
    cfg = write_config(tmp_path, real_druid, f"[LOCAL]\nroot = {tmp_path / 'store'}\n", _spec(SPEC, ds))
    assert cli("push", DATA, "--spec", "project_injestion_spec", "--config", cfg, "--timeout", "300").code == 0
    nothing = tmp_path / "observation_status.json"  # rows the spec cannot parse: Druid processes none of them
    nothing.write_bytes((EXAMPLE_DATA.parent / "observations" / "observation_status.json").read_bytes())
    r = cli("push", nothing, "--prefix", "obs", "--replace", "--spec", "project_injestion_spec", "--config", cfg,
            "--json", "--timeout", "300")
    d = r.json["druid"]
    assert r.code == 1 and d["status"] == "INCOMPLETE", r.err
    assert d["ingested"]["processed"] == 0 and d["ingested"]["unparseable"] == 200
    assert "ingested 0 rows" in d["errorMsg"] and d["rows"] == ROWS  # the old rows: not this task's


def test_an_append_is_counted_per_task(cli, tmp_path, real_druid):
    ds = fresh_name("append")
    cfg = write_config(tmp_path, real_druid, f"[LOCAL]\nroot = {tmp_path / 'store'}\n", _spec(SPEC, ds))
    assert cli("push", DATA, "--spec", "project_injestion_spec", "--config", cfg, "--timeout", "300").code == 0
    r = cli("push", DATA, "--prefix", "again", "--append", "--spec", "project_injestion_spec", "--config", cfg,
            "--json", "--timeout", "300")
    d = r.json["druid"]
    assert r.code == 0 and d["status"] == "SUCCESS", r.err
    assert d["ingested"]["processed"] == ROWS and d["rows"] == 2 * ROWS
