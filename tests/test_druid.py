"""The Druid handoff against the Overlord double, which reads what the spec points at from real servers."""

from __future__ import annotations

import json
import time

import pytest
from conftest import EXAMPLE_DATA, fresh_name
from druid_double import OverlordDouble

from ml_analytics.druid.overlord import OverlordClient, TaskNotFound
from ml_analytics.druid.spec import SpecError, point_spec, validate_spec
from ml_analytics.retry import RetryPolicy
from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY

SPEC = json.loads((EXAMPLE_DATA.parent / "specs" / "sl-project.json").read_text())
ROWS = 300  # examples/data/sl_projects.json
SECRET = "PLANTED-druid-pass-77a1"


@pytest.fixture
def overlord(seaweed, azurite, fake_gcs):
    double = OverlordDouble(s3=seaweed, azurite=azurite, gcs=fake_gcs, pending_seconds=0.2, running_seconds=0.1)
    yield double
    double.close()


def config_for(section, tmp_path, seaweed, azurite, fake_gcs, druid_extra="", overlord=None):
    if section == "LOCAL":
        store = f"[LOCAL]\nroot = {tmp_path / 'store'}\n"
    elif section in ("AWS", "ORACLE", "S3"):
        bucket = seaweed.create_bucket(fresh_name(section.lower()))
        store = (f"[{section}]\nendpoint_url = {seaweed.endpoint}\naccess_key = {seaweed.access_key}\n"
                 f"secret_access_key = {seaweed.secret_key}\nregion_name = us-east-1\nbucket_name = {bucket}\n")
    elif section == "AZURE":
        container = azurite.create_container(fresh_name("az"))
        store = (f"[AZURE]\naccount_name = {AZURITE_ACCOUNT}\ncontainer_name = {container}\n"
                 f"account_key = {AZURITE_KEY}\nendpoint_url = {azurite.endpoint}\n")
    else:
        bucket = fake_gcs.create_bucket(fresh_name("gcs"))
        store = f"[GCP]\nbucket_name = {bucket}\nendpoint_url = {fake_gcs.endpoint}\n"
    druid = "[DRUID]\n"
    if overlord:
        druid += f"batch_url = {overlord.batch_url}\n"
    druid += f"project_injestion_spec = {json.dumps(SPEC)}\n" + druid_extra
    p = tmp_path / "config.ini"
    p.write_text("[COMMON]\nmax_retries = 2\n" + store + druid)
    p.chmod(0o600)
    return p


@pytest.mark.parametrize("section", ["LOCAL", "AWS", "ORACLE", "S3", "AZURE", "GCP"])
def test_push_ends_in_success_with_right_row_count(cli, tmp_path, seaweed, azurite, fake_gcs, overlord, section):
    cfg = config_for(section, tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--prefix", "projects/", "--spec", "project_injestion_spec",
            "--config", cfg, "--json", "--timeout", "60")
    assert r.code == 0, r.err + r.out
    d = r.json["druid"]
    assert d["status"] == "SUCCESS" and d["rows"] == ROWS and d["expected_rows"] == ROWS
    assert d["task"].startswith("index_parallel_sl-project_")
    sent = overlord.submitted[-1]["spec"]["ioConfig"]["inputSource"]
    expected_type = {"LOCAL": "local", "AWS": "s3", "ORACLE": "s3", "S3": "s3", "AZURE": "azure",  # the spec says azure: kept
                     "GCP": "google"}[section]
    assert sent["type"] == expected_type
    assert ("endpointConfig" in sent) == (section in ("ORACLE", "S3"))
    assert json.loads((tmp_path / d["spec_path"]).read_text())["spec"]["ioConfig"]["inputSource"] == sent


def test_push_missing_object_fails_with_druids_message(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    cfg = config_for("S3", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    bucket = cfg.read_text().split("bucket_name = ")[1].splitlines()[0]
    r = cli("ingest", "--uri", f"s3://{bucket}/projects/not-there.json", "--spec", "project_injestion_spec",
            "--config", cfg, "--json", "--timeout", "60")
    assert r.code == 1
    d = r.json["druid"]
    assert d["status"] == "FAILED" and "Error occurred while trying to read uri" in d["errorMsg"]
    assert "not-there.json" in d["errorMsg"] and "NoSuchKey" in d["errorMsg"] and "\n" not in d["errorMsg"]


def test_push_unparseable_rows_are_reported_incomplete(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    """Druid 33 drops lines it cannot parse and ends SUCCESS: the push says what was left out, exit 1."""
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    bad = tmp_path / "bad.json"
    bad.write_text('{"ok": 1}\nnot json\n')
    r = cli("push", bad, "--spec", "project_injestion_spec", "--config", cfg, "--json")
    assert r.code == 1
    d = r.json["druid"]
    assert d["status"] == "INCOMPLETE" and d["rows"] == 1 and "1 unparseable" in d["errorMsg"]


def test_append_adds_rows_and_replace_resets(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    f = EXAMPLE_DATA.parent / "observations" / "observation_status.json"  # 200 rows
    args = ("--spec", "project_injestion_spec", "--config", cfg, "--json")
    assert cli("push", f, *args).json["druid"]["rows"] == 200
    appended = cli("push", f, "--prefix", "again", "--append", *args)
    assert appended.json["druid"]["rows"] == 400
    assert overlord.submitted[-1]["spec"]["ioConfig"]["appendToExisting"] is True
    assert cli("push", f, "--replace", *args).json["druid"]["rows"] == 200


def test_without_druid_the_task_is_written_not_submitted(cli, tmp_path):
    r = cli("push", EXAMPLE_DATA, "--prefix", "projects/", "--spec", EXAMPLE_DATA.parent / "specs" / "sl-project.json",
            "--json")
    assert r.code == 0
    d = r.json["druid"]
    assert d["status"] == "NOT_SUBMITTED" and d["task"] is None and d["input_source"] == "local"
    task = json.loads((tmp_path / d["spec_path"]).read_text())
    files = task["spec"]["ioConfig"]["inputSource"]["files"]
    assert len(files) == 3 and all(f.startswith(str(tmp_path / "cloud-storage")) for f in files)
    human = cli("push", EXAMPLE_DATA, "--spec", EXAMPLE_DATA.parent / "specs" / "sl-project.json")
    assert "not submitted" in human.out and human.code == 0


def test_timeout_shuts_the_task_down(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    overlord.stuck = True
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg,
            "--timeout", "1.5")
    assert r.code == 1
    assert "PENDING" in r.err and "no free worker" in r.err and "TIMEOUT" in r.err
    task = next(iter(overlord.tasks.values()))
    assert task["status"]["status"] == "FAILED" and task["status"]["errorMsg"] == "Shutdown request from user"


def test_success_with_zero_rows_is_a_failure(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    empty = tmp_path / "empty.json"
    empty.write_text("")
    r = cli("push", empty, "--spec", "project_injestion_spec", "--config", cfg, "--json")
    assert r.code == 1 and r.json["druid"]["rows"] == 0 and "0 rows" in r.json["druid"]["errorMsg"]


def test_unknown_input_source_extension_is_reported(cli, tmp_path, seaweed, azurite, fake_gcs):
    double = OverlordDouble(s3=seaweed, extensions=())
    try:
        cfg = config_for("S3", tmp_path, seaweed, azurite, fake_gcs, overlord=double)
        r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg)
        assert r.code == 1
        assert "DRUID refused the task (400): Could not resolve type id 's3'" in r.err
        assert r.err.count("\n") <= 3
    finally:
        double.close()


def test_basic_auth_503_and_unknown_ids(cli, tmp_path, seaweed, azurite, fake_gcs):
    double = OverlordDouble(s3=seaweed, username="druid", password=SECRET, pending_seconds=0.05, running_seconds=0.05)
    try:
        cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=double)
        no_auth = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg)
        assert no_auth.code == 2 and "401" in no_auth.err
        with_auth = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=double,
                               druid_extra=f"username = druid\npassword = {SECRET}\n")
        double.not_leader_responses = 2
        ok = cli("-vv", "push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config",
                 with_auth, "--json")
        assert ok.code == 0 and ok.json["druid"]["status"] == "SUCCESS"
        assert SECRET not in ok.text
        client = OverlordClient(double.batch_url, username="druid", password=SECRET, retry=RetryPolicy(max_retries=0))
        with pytest.raises(TaskNotFound):
            client.status("nope")
        double.unknown_id_status = 400
        with pytest.raises(TaskNotFound):
            client.status("nope")
        status = cli("druid", "status", ok.json["druid"]["task"], "--config", with_auth)
        assert status.code == 0 and "SUCCESS" in status.out
    finally:
        double.close()


def test_unreachable_druid_is_one_line(cli, tmp_path):
    from ml_analytics.testing.servers import free_port

    cfg = tmp_path / "c.ini"
    cfg.write_text(f"[LOCAL]\nroot = {tmp_path}/s\n[COMMON]\nmax_retries = 1\nretry_timeout = 2\n[DRUID]\n"
                   f"batch_url = http://127.0.0.1:{free_port()}/druid/indexer/v1/task\n")
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", EXAMPLE_DATA.parent / "specs" / "sl-project.json",
            "--config", cfg)
    assert r.code == 1 and "cannot reach" in r.err and "Traceback" not in r.err


# -- spec handling -------------------------------------------------------------------------------------
def _spec(**changes):
    task = json.loads(json.dumps(SPEC))
    for path, value in changes.items():
        cur = task
        keys = path.split("__")
        for k in keys[:-1]:
            cur = cur[k]
        if value is None:
            cur.pop(keys[-1], None)
        else:
            cur[keys[-1]] = value
    return task


@pytest.mark.parametrize("changes,fragment", [
    ({"type": "kafka"}, "type must be one of"),
    ({"spec__ioConfig__type": "index"}, "spec.ioConfig.type is 'index'"),
    ({"spec__tuningConfig__type": "index"}, "spec.tuningConfig.type is 'index'"),
    ({"spec__dataSchema__dataSource": ""}, "dataSource is required"),
    ({"spec__dataSchema__dataSource": ".hidden"}, "must not start with '.'"),
    ({"spec__dataSchema__dataSource": "a/b"}, "must not contain '/'"),
    ({"spec__dataSchema__dataSource": "a\tb"}, "whitespace"),
    ({"spec__ioConfig__inputFormat": None}, "inputFormat is required"),
    ({"spec__ioConfig__appendToExisting": True, "spec__tuningConfig__partitionsSpec": {"type": "hashed"}},
     "appendToExisting needs a 'dynamic' partitionsSpec"),
    ({"spec__ioConfig__dropExisting": True}, "dropExisting needs explicit granularitySpec.intervals"),
    ({"spec__ioConfig": None}, "missing spec.ioConfig"),
])
def test_validation_names_the_field(changes, fragment):
    with pytest.raises(SpecError, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        validate_spec(_spec(**changes))


@pytest.mark.parametrize("text,fragment", [
    ("{not json", "not valid JSON"),
    ('{"type": "index_parallel"}', "missing the 'spec' object"),
    ('["a"]', "a task spec is a JSON object"),
])
def test_bad_spec_in_config_fails_before_uploading(cli, tmp_path, text, fragment):
    cfg = tmp_path / "c.ini"
    cfg.write_text(f"[LOCAL]\nroot = {tmp_path}/s\n[DRUID]\nmy_spec = {text}\n")
    r = cli("push", EXAMPLE_DATA, "--spec", "my_spec", "--config", cfg)
    assert r.code == 2 and fragment in r.err and "Traceback" not in r.err
    assert not (tmp_path / "s").exists()  # nothing uploaded


def test_point_spec_sets_source_and_append():
    task = point_spec(SPEC, {"type": "local", "files": ["/x"]}, append=True)
    assert task["spec"]["ioConfig"]["inputSource"] == {"type": "local", "files": ["/x"]}
    assert task["spec"]["ioConfig"]["appendToExisting"] is True
    assert SPEC["spec"]["ioConfig"]["inputSource"]["type"] == "azure"  # the original is untouched
    validate_spec(task)


def test_azure_input_source_choice(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    """The spec's own Azure type is kept; the configured one applies only where the spec has none."""
    cfg = config_for("AZURE", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord,
                     druid_extra="azure_input_source = azureStorage\n")
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg, "--json")
    assert r.code == 0, r.err
    sent = overlord.submitted[-1]["spec"]["ioConfig"]["inputSource"]
    assert sent["type"] == "azure" and sent["uris"][0].startswith("azure://")  # the spec said azure
    local_spec = json.loads(json.dumps(SPEC))
    local_spec["spec"]["ioConfig"]["inputSource"] = {"type": "local", "files": ["/x"]}
    for configured, want in (("", "azureStorage"), ("azure_input_source = azure\n", "azure")):
        cfg.write_text(cfg.read_text().split("project_injestion_spec = ")[0]
                       + f"project_injestion_spec = {json.dumps(local_spec)}\n" + configured)
        r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg,
                "--json")
        assert r.code == 0, r.err
        assert overlord.submitted[-1]["spec"]["ioConfig"]["inputSource"]["type"] == want


def test_check_validates_druid_section(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    r = cli("check", "--config", cfg)
    assert r.code == 0 and "ok    [DRUID] 1 ingestion spec(s) valid; Overlord" in r.out
    bad = tmp_path / "bad.ini"
    bad.write_text(cfg.read_text().replace('"index_parallel", "spec"', '"index", "spec"', 1))
    r = cli("check", "--config", bad)
    assert r.code == 2 and "FAIL  [DRUID]" in r.err and "project_injestion_spec" in r.err


def test_http_input_source_with_presigned_urls_from_s3(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    cfg = config_for("S3", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--prefix", "signed", "--spec", "project_injestion_spec",
            "--config", cfg, "--input-source", "http", "--json")
    assert r.code == 0, r.err
    d = r.json["druid"]
    assert d["status"] == "SUCCESS" and d["rows"] == ROWS and d["input_source"] == "http"
    uri = overlord.submitted[-1]["spec"]["ioConfig"]["inputSource"]["uris"][0]
    assert uri.startswith(seaweed.endpoint) and "X-Amz-Signature=" in uri
    assert "X-Amz-Signature" not in r.out  # the signed URL goes to Druid and the 600-mode task file only
    spec_file = tmp_path / d["spec_path"]
    assert spec_file.stat().st_mode & 0o077 == 0


# -- issue 12: the deployment's [DRUID] -----------------------------------------------------------
QUERY_SPEC = {"queryType": "scan", "dataSource": "sl-observation", "intervals": ["1901-01-01/2101-01-01"],
              "columns": ["userId"], "resultFormat": "list"}


def test_check_skips_query_specs_of_the_deployment(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord,
                     druid_extra=f"observation_query_spec = {json.dumps(QUERY_SPEC)}\n"
                                 f"survey_query_spec = {json.dumps(QUERY_SPEC)}\n"
                                 f"urlQuery = {overlord.url}/druid/v2?pretty\n")
    r = cli("check", "--config", cfg)
    assert r.code == 0, r.err + r.out
    assert "1 ingestion spec(s) valid" in r.out
    assert "skipped 2 query spec(s), not ingestion specs: observation_query_spec, survey_query_spec" in r.out


@pytest.mark.parametrize("url_query, sql", [
    ("http://h:8082/druid/v2?pretty", "http://h:8082/druid/v2/sql"),
    ("http://h:8082/druid/v2/?pretty#x", "http://h:8082/druid/v2/sql"),
    ("http://h:8082/druid/v2/sql", "http://h:8082/druid/v2/sql"),
])
def test_sql_url_from_url_query(url_query, sql):
    from ml_analytics.druid.handoff import sql_url_from_query_url

    assert sql_url_from_query_url(url_query) == sql


def test_push_with_pretty_url_query_counts_rows(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord,
                     druid_extra=f"urlQuery = {overlord.url}/druid/v2?pretty\n")
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg, "--json")
    assert r.code == 0 and r.json["druid"]["rows"] == ROWS and r.json["druid"]["rows_error"] is None


def test_push_waits_for_segments_served_after_the_task_ends(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    """Druid serves a task's rows some time after SUCCESS (seconds idle, minutes busy): push counts them
    once they are served, not the 0 SQL answers right after the task."""
    overlord.serve_seconds = 8.0
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg,
            "--json", "--timeout", "120")
    d = r.json["druid"]
    assert r.code == 0 and d["status"] == "SUCCESS", r.err
    assert d["rows"] == ROWS and d["rows_error"] is None and d["ingested"]["processed"] == ROWS


def test_rows_not_yet_served_when_the_wait_ends_are_said_so(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    """The wait for the count is bounded by --timeout; a count that has not caught up is not shown bare:
    the verdict is the task's own report, and the warning says the datasource was still loading."""
    overlord.serve_seconds = 60.0
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    started = time.monotonic()
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg,
            "--json", "--timeout", "3")
    assert time.monotonic() - started < 30
    d = r.json["druid"]
    assert r.code == 0 and d["status"] == "SUCCESS" and d["ingested"]["processed"] == ROWS, r.err
    assert d["rows"] == 0 and f"not the {ROWS} expected" in d["rows_error"], d
    assert "to be served" in d["rows_error"] and "warning: druid: the datasource answered 0 rows" in r.err


def test_rows_that_cannot_be_counted_are_said_so(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord,
                     druid_extra=f"sql_url = {overlord.url}/no/sql/here\n")
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg, "--json")
    d = r.json["druid"]
    assert d["status"] == "SUCCESS" and d["rows"] is None
    assert d["rows_error"].startswith("rows not counted: DRUID: row count query failed (404)")
    assert "ml-analytics: warning: druid: rows not counted" in r.err
    text = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg)
    assert "warning: druid: rows not counted" in text.err


def test_finished_task_prints_its_final_status_only(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg)
    assert r.code == 0, r.err
    last = [ln for ln in r.err.splitlines() if ln.startswith("druid: task ")][-1]
    assert last.endswith(" is SUCCESS") and "SUCCESS/" not in r.err


# -- issue 13: bounded waits, nothing leaked, nothing lost --------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5", "1e12", "soon"])
def test_nonsense_timeouts_are_refused(cli, tmp_path, seaweed, azurite, fake_gcs, overlord, value):
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord,
                     druid_extra=f"timeout = {value}\n")
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg)
    assert r.code == 2, r.err
    assert "[DRUID]" in r.err and "timeout" in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.json"))  # nothing uploaded
    good = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    for cmd in (("push", EXAMPLE_DATA / "sl_projects.json"), ("ingest", "--uri", "file:///x.json")):
        r = cli(*cmd, "--spec", "project_injestion_spec", "--config", good, "--timeout", value)
        assert r.code == 2 and "--timeout" in r.err and "Traceback" not in r.err, r.err
        assert len(r.err.strip().splitlines()) == 1, r.err
    assert not overlord.submitted


def test_password_in_batch_url_is_auth_and_never_printed(cli, tmp_path, seaweed, azurite, fake_gcs):
    double = OverlordDouble(s3=seaweed, username="druid", password=SECRET, pending_seconds=0.05,
                            running_seconds=0.05)
    try:
        url = double.batch_url.replace("http://", f"http://druid:{SECRET}@")
        cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs)
        cfg.write_text(cfg.read_text().replace("[DRUID]\n", f"[DRUID]\nbatch_url = {url}\n"))
        ok = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg,
                 "--json")
        assert ok.code == 0 and ok.json["druid"]["status"] == "SUCCESS", ok.err
        assert SECRET not in ok.text
        status = cli("druid", "status", ok.json["druid"]["task"], "--config", cfg, "--json")
        assert status.code == 0 and SECRET not in status.text
        wrong = cfg.read_text().replace(f"druid:{SECRET}@", f"druid:{SECRET}-x@")
        cfg.write_text(wrong)
        for args in (("push", EXAMPLE_DATA / "sl_projects.json", "--json"), ("check",),
                     ("druid", "status", "nope")):
            r = cli(*args, "--spec", "project_injestion_spec", "--config", cfg) if args[0] == "push" \
                else cli(*args, "--config", cfg)
            assert r.code != 0 and SECRET not in r.text, r.text
        bad_url = cfg.read_text().replace(f"http://druid:{SECRET}-x@", f"ftp://druid:{SECRET}@")
        cfg.write_text(bad_url)
        r = cli("check", "--config", cfg)
        assert r.code == 2 and SECRET not in r.text and "batch_url" in r.text
    finally:
        double.close()


def test_push_json_keeps_uploads_when_druid_fails(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    overlord.not_leader_responses = 100  # every submission: 503, no leader
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg, "--json")
    assert r.code == 1, r.err
    doc = r.json
    assert doc["summary"]["uploaded"] == 1 and doc["results"][0]["status"] == "uploaded"
    assert doc["druid"]["status"] == "ERROR" and "503" in doc["druid"]["errorMsg"] and doc["ok"] is False


def test_ingest_names_the_uri_no_configured_provider_serves(cli, tmp_path, write_config):
    store = tmp_path / "store"
    cfg = write_config(f"[LOCAL]\nroot = {store}\n")
    good = (store / "ml-analytics" / "p" / "a.json").as_uri()
    r = cli("ingest", "--uri", good, "--uri", "gs://elsewhere/p/b.json", "--spec", EXAMPLE_DATA.parent / "specs" /
            "sl-project.json", "--config", cfg)
    assert r.code == 2 and "--uri gs://elsewhere/p/b.json: no configured provider serves it" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_push_ingests_only_what_it_uploaded_and_names_skipped_special_files(cli, tmp_path, write_config):
    import os

    d = tmp_path / "reports"
    d.mkdir()
    (d / "sl_projects.json").write_bytes((EXAMPLE_DATA / "sl_projects.json").read_bytes())
    os.mkfifo(d / "pipe.json")
    cfg = write_config(f"[LOCAL]\nroot = {tmp_path / 'store'}\n")
    r = cli("push", d, "--prefix", "p", "--spec", EXAMPLE_DATA.parent / "specs" / "sl-project.json", "--config", cfg,
            "--json")
    assert r.code == 1
    assert f"skipped {d / 'pipe.json'}: is a FIFO" in r.err and "not submitted" in r.err
    assert {x["key"]: x["status"] for x in r.json["results"]} == {"p/pipe.json": "skipped", "p/sl_projects.json": "uploaded"}


# -- what this task ingested (#22) ----------------------------------------------------------------------------
def test_a_missing_local_file_is_refused_before_the_task_is_sent(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    assert cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg).code == 0
    sent = len(overlord.submitted)
    missing = tmp_path / "store" / "ml-analytics" / "nope.json"
    r = cli("ingest", "--uri", missing.as_uri(), "--spec", "project_injestion_spec", "--config", cfg)
    assert r.code == 2 and str(missing) in r.err and len(overlord.submitted) == sent, r.err


def test_the_verdict_is_this_tasks_own_rows(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
    args = ("--spec", "project_injestion_spec", "--config", cfg, "--json")
    first = cli("push", EXAMPLE_DATA / "sl_projects.json", *args).json["druid"]
    assert first["status"] == "SUCCESS" and first["ingested"]["processed"] == 300 and first["rows"] == 300
    appended = cli("push", EXAMPLE_DATA / "sl_projects.json", "--prefix", "again", "--append", *args).json["druid"]
    assert appended["status"] == "SUCCESS" and appended["ingested"]["processed"] == 300 and appended["rows"] == 600
    empty = tmp_path / "empty.json"
    empty.write_text("")
    r = cli("push", empty, "--prefix", "e", "--replace", *args)
    d = r.json["druid"]
    assert r.code == 1 and d["status"] == "INCOMPLETE" and d["ingested"]["processed"] == 0
    assert "ingested 0 rows" in d["errorMsg"]


def test_without_a_task_report_the_count_decides_and_says_so(cli, tmp_path, seaweed, azurite, fake_gcs, overlord):
    overlord.no_reports = True
    try:
        cfg = config_for("LOCAL", tmp_path, seaweed, azurite, fake_gcs, overlord=overlord)
        r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", "project_injestion_spec", "--config", cfg,
                "--json", "--timeout", "60")
        d = r.json["druid"]
        assert r.code == 0 and d["status"] == "SUCCESS" and d["rows"] == 300 and d["ingested"] is None
        assert "judged by the datasource's row count" in d["rows_error"] and "no report" in d["rows_error"]
    finally:
        overlord.no_reports = False
