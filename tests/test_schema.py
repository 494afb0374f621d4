"""Every --json document fits ml_analytics.schema, and the compat shim reads documents built from it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
from conftest import EXAMPLE_DATA

from ml_analytics import schema
from ml_analytics.transfer import TransferResult

SHIM = Path(__file__).resolve().parents[1] / "src" / "ml_analytics" / "compat" / "shim" / "_ml_analytics_runner.py"
SPEC = EXAMPLE_DATA.parent / "specs" / "sl-project.json"


@pytest.fixture
def store_config(tmp_path, write_config):
    return write_config(f"[LOCAL]\nroot = {tmp_path / 's'}\n")


def test_every_command_s_document_fits_the_schema(cli, tmp_path, store_config):
    docs = {
        "upload": cli("upload", EXAMPLE_DATA, "--config", store_config, "--json"),
        "push": cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", SPEC, "--config", store_config, "--json"),
        "ingest": cli("ingest", "--uri", (tmp_path / "s" / "ml-analytics" / "sl_projects.json").as_uri(), "--spec",
                      SPEC, "--config", store_config, "--json"),
        "check": cli("check", "--config", store_config, "--json"),
        "providers": cli("providers", "--json"),
    }
    dry = cli("upload", EXAMPLE_DATA, "--config", store_config, "--json", "--dry-run")
    for kind, run in docs.items():
        assert run.code == 0, (kind, run.err)
        assert schema.problems(kind, run.json) == [], (kind, run.out[:500])
    assert schema.problems("upload", dry.json) == [] and dry.json["dry_run"] is True
    failing = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", store_config, "--json", "--to", "LOCAL",
                  env={"ML_ANALYTICS_LOCAL_CREATE_BUCKET": "false", "ML_ANALYTICS_LOCAL_BUCKET_NAME": "absent"})
    assert failing.code == 1 and schema.problems("upload", failing.json) == []


def test_the_schema_check_can_fail():
    assert sorted(schema.problems("upload", {"results": [], "ok": True})) == [
        "missing 'summary'", "missing 'version'", "version is None, expected 1"]
    doc = {"version": 1, "ok": True, "results": [{"provider": "LOCAL"}], "summary": {}, "extra": 1}
    found = schema.problems("upload", doc)
    assert any("unexpected 'extra'" in p for p in found) and any("does not fit" in p for p in found)


def _shim():
    spec = importlib.util.spec_from_file_location("ml_analytics_runner_under_test", SHIM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _document(results, ok: bool) -> str:
    from ml_analytics.report import Tally

    stream_out: list[str] = []
    stream = schema.JsonStream(stream_out.append)
    for r in results:
        stream.result(r)
    stream.close(schema.batch_fields(summary=Tally.of(results).summary(), ok=ok))
    return "".join(stream_out)


def test_the_compat_shim_reads_documents_built_from_the_schema():
    shim = _shim()
    good = TransferResult("LOCAL", "p/a.json", "file:///x/p/a.json", 3, "md5", "uploaded", None, "/x/a.json")
    bad = TransferResult("S3", "p/a.json", None, 3, None, "failed", "S3 bucket 'b': permission denied (403)", "/x")
    ok = subprocess.CompletedProcess([], 0, _document([good], True), "")
    assert shim._outcome(ok) == [schema.result(good)]
    failed = subprocess.CompletedProcess([], 1, _document([good, bad], False), "")
    with pytest.raises(shim.CloudUploadError, match=r"1 of 2 uploads failed: S3 p/a.json: .*permission denied"):
        shim._outcome(failed)
    nothing = subprocess.CompletedProcess([], 0, _document([], True), "")
    with pytest.raises(shim.CloudUploadError, match="no upload at all"):
        shim._outcome(nothing)
    for doc in (json.loads(ok.stdout), json.loads(failed.stdout)):
        assert schema.problems("upload", doc) == []
