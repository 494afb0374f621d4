"""The ``ml-analytics`` command end to end, in a subprocess, on the local store."""

import hashlib
import json
from pathlib import Path

from conftest import EXAMPLE_DATA

SECRET = "PLANTED-s3cr3t-VALUE-9f8e7d"


def test_main_job_uploads_example_data_to_embedded_local_store(cli, tmp_path):
    r = cli("upload", EXAMPLE_DATA, "--prefix", "projects/")
    assert r.code == 0, r.err
    assert "Traceback" not in r.text
    assert "LOCAL" in r.out and "3 uploaded" in r.out and "0 failed" in r.out  # examples/data: project reports
    for f in EXAMPLE_DATA.rglob("*.json"):
        stored = tmp_path / "cloud-storage" / "ml-analytics" / "projects" / f.relative_to(EXAMPLE_DATA)
        assert stored.read_bytes() == f.read_bytes()


def test_json_output_shape(cli, tmp_path):
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--prefix", "/a//b/", "--json")
    assert r.code == 0
    doc = r.json
    assert doc["ok"] is True and len(doc["results"]) == 1
    res = doc["results"][0]
    data = (EXAMPLE_DATA / "sl_projects.json").read_bytes()
    assert res["provider"] == "LOCAL" and res["key"] == "a/b/sl_projects.json" and res["status"] == "uploaded"
    assert res["bytes"] == len(data) and res["md5"] == hashlib.md5(data).hexdigest() and res["error"] is None
    assert res["uri"].startswith("file:///") and res["uri"].endswith("/ml-analytics/a/b/sl_projects.json")
    assert r.err == f"ml-analytics: config: embedded default ([LOCAL] {tmp_path / 'cloud-storage'}); no config file found\n"


def test_dry_run_uploads_nothing(cli, tmp_path):
    r = cli("upload", EXAMPLE_DATA, "--dry-run", "--json")
    assert r.code == 0 and r.json["dry_run"] is True
    assert {x["status"] for x in r.json["results"]} == {"planned"}
    assert not (tmp_path / "cloud-storage").exists()


def test_exit_codes_and_one_line_errors(cli, tmp_path, write_config):
    missing = cli("upload", tmp_path / "nope.json")
    assert missing.code == 2 and missing.err.strip().count("\n") == 0
    assert "nope.json: no such file" in missing.err and "Traceback" not in missing.err
    unknown = cli("upload", EXAMPLE_DATA, "--to", "NOPE")
    assert unknown.code == 2 and "unknown provider section [NOPE]" in unknown.err
    absent = cli("upload", EXAMPLE_DATA, "--to", "AWS")
    assert absent.code == 2 and "no [AWS] section" in absent.err
    cfg = write_config("[LOCAL]\nroot = %s\nbucket_name = b\ncreate_bucket = false\n" % (tmp_path / "none"))
    failed = cli("upload", EXAMPLE_DATA, "--config", cfg, "--json")
    assert failed.code == 1 and failed.json["ok"] is False
    assert all(x["status"] == "failed" and "bucket 'b'" in x["error"] for x in failed.json["results"])
    usage = cli("upload")
    assert usage.code == 2


def test_check_names_unrendered_placeholder_without_printing_values(cli, write_config):
    cfg = write_config(f"[LOCAL]\n[AWS]\naccess_key = {{{{ ml_AWS_access_key }}}}\nsecret_access_key = {SECRET}\n"
                       "region_name = us-east-1\nbucket_name = b\n")
    r = cli("check", "--config", cfg)
    assert r.code == 2
    assert "[AWS] access_key" in r.err and "placeholder" in r.err
    assert SECRET not in r.text
    assert "ok    [LOCAL]" in r.out


def test_check_ok_on_embedded_default(cli):
    r = cli("check")
    assert r.code == 0 and "ok    [LOCAL]" in r.out and "writable" in r.out


def test_providers_lists_sections_and_keys(cli):
    r = cli("providers", "--json")
    assert r.code == 0
    docs = {p["section"]: p for p in r.json["providers"]}
    assert {"LOCAL", "AWS", "ORACLE", "S3", "AZURE", "GCP"} <= set(docs)
    aws_keys = {k["name"]: k for k in docs["AWS"]["keys"]}
    assert aws_keys["secret_access_key"]["secret"] and aws_keys["bucket_name"]["required"]
    human = cli("providers")
    assert "[AZURE]" in human.out and "sas_token" in human.out


def test_planted_secret_never_printed(cli, tmp_path, write_config):
    cfg = write_config(f"[LOCAL]\nroot = {tmp_path}/s\ncreate_bucket = false\nbucket_name = b\n"
                       f"[DRUID]\npassword = {SECRET}\n[AZURE]\naccount_name = {SECRET}x\n", mode=0o644)
    for args in (["upload", EXAMPLE_DATA, "--json"], ["upload", EXAMPLE_DATA], ["check", "--json"], ["check"],
                 ["-vv", "upload", EXAMPLE_DATA], ["upload", tmp_path / SECRET]):
        r = cli(*args, "--config", cfg)
        assert SECRET not in r.text, args
    warn = cli("check", "--config", cfg)
    assert "readable by other users" in warn.err


def test_seed_api_from_python(tmp_path, monkeypatch):
    from ml_analytics.cloud_storage.cloud import MultiCloud

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.ini").write_text("[LOCAL]\n")  # no config found would be a ConfigError
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sl_projects.json").write_text('{"x": 1}\n')
    results = MultiCloud().upload_to_cloud(blob_Path="projects", local_Path=str(tmp_path / "out"),
                                           file_Name="sl_projects.json")
    assert [r.status for r in results] == ["uploaded"]
    assert (tmp_path / "cloud-storage/ml-analytics/projects/sl_projects.json").read_text() == '{"x": 1}\n'
    assert json.loads(Path(results[0].uri[len("file://"):]).read_text()) == {"x": 1}


def test_usage_mistakes_print_one_line(cli):
    for args in (("upload", "--bogus", "x"), ("nope",), ("upload",), ("upload", "--concurrency", "0", "x")):
        r = cli(*args)
        assert r.code == 2, args
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ml-analytics: error: "), r.err


def test_version_answers_without_importing_the_cli():
    import subprocess
    import sys

    code = ("import sys; sys.argv = ['ml-analytics', '--version']; from ml_analytics.entry import main; main(); "
            "print(sorted(m for m in ('click', 'rich', 'ml_analytics.cli', 'importlib.metadata') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    from ml_analytics import __version__

    assert out == f"ml-analytics, version {__version__}\n[]\n"
    full = subprocess.run([sys.executable, "-m", "ml_analytics", "--version"], capture_output=True, text=True)
    assert full.stdout.strip() == f"ml-analytics, version {__version__}"
