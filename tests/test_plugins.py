"""Adding a cloud: a dropped-in module or an installed package, zero edits elsewhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import ml_analytics
from conftest import EXAMPLE_DATA

# The worked example from docs/adding-a-cloud-provider.md, dropped in as one file.
DROPPED = textwrap.dedent('''
    """MEMORYFS: a provider kept in a folder of JSON-free files, to prove a dropped-in module works."""
    import hashlib
    import os
    from pathlib import Path

    from ml_analytics.cloud_storage.base import CloudProvider, ObjectInfo, Option, StoredObject
    from ml_analytics.source import SourceFile


    class DroppedStore(CloudProvider):
        section = "DROPPED"
        description = "A provider added by dropping one file into cloud_storage/."
        uri_scheme = "dropped"
        options = (Option("folder", "where objects go", required=True, arg="folder"),
                   Option("bucket_name", "bucket", required=True, arg="bucketName"),
                   Option("api_key", "a credential", secret=True, arg="apiKey"))

        def __init__(self, folder, bucketName, apiKey=None):
            import http.cookiejar  # an SDK import belongs inside methods, never at module top
            self.base = Path(folder) / bucketName
            self.bucket = bucketName
            self._secret_api_key = apiKey

        def put_file(self, path, key):
            src = SourceFile(path)
            data = src.read_all()
            dest = self.base / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            return StoredObject(self.section, key, self.uri(key), len(data), src.md5)

        def stat(self, key):
            p = self.base / key
            return ObjectInfo(key, p.stat().st_size) if p.is_file() else None

        def list(self, prefix=""):
            start = self.list_prefix(prefix)
            for p in sorted(self.base.rglob("*")) if self.base.exists() else []:
                key = p.relative_to(self.base).as_posix()
                if p.is_file() and key.startswith(start):
                    yield ObjectInfo(key, p.stat().st_size)

        def delete(self, key):
            (self.base / key).unlink(missing_ok=True)

        def stored_md5(self, info):
            return hashlib.md5((self.base / info.key).read_bytes()).hexdigest()
''')


def _package_copy_with(tmp_path: Path, module_text: str) -> Path:
    """A copy of the installed ml_analytics package with one module dropped into cloud_storage/."""
    site = tmp_path / "site"
    shutil.copytree(Path(ml_analytics.__file__).parent, site / "ml_analytics",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (site / "ml_analytics" / "cloud_storage" / "dropped.py").write_text(module_text)
    return site


def _run(site: Path, *args, cwd: Path):
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_dropped_in_module_is_found_without_other_edits(tmp_path):
    site = _package_copy_with(tmp_path, DROPPED)
    cfg = tmp_path / "config.ini"
    cfg.write_text(f"[DROPPED]\nfolder = {tmp_path / 'objects'}\nbucket_name = reports\napi_key = PLANTED-api-key-1\n")
    cfg.chmod(0o600)
    listed = _run(site, "-m", "ml_analytics", "providers", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    doc = {p["section"]: p for p in json.loads(listed.stdout)["providers"]}
    assert doc["DROPPED"]["class"] == "ml_analytics.cloud_storage.dropped.DroppedStore"
    up = _run(site, "-m", "ml_analytics", "upload", EXAMPLE_DATA, "--prefix", "projects", "--config", cfg, "--json",
              cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert (tmp_path / "objects/reports/projects/sl_projects.json").read_bytes() == \
        (EXAMPLE_DATA / "sl_projects.json").read_bytes()
    seed = _run(site, "-c", "from ml_analytics.cloud_storage import MultiCloud;"
                f"print(MultiCloud({str(cfg)!r}).upload_to_cloud('seed', {str(EXAMPLE_DATA)!r}, 'sl_projects.json'))",
                cwd=tmp_path)
    assert seed.returncode == 0, seed.stderr
    assert (tmp_path / "objects/reports/seed/sl_projects.json").exists()
    # discovering it imported no cloud SDK
    probe = _run(site, "-c", "import sys; from ml_analytics.cloud_storage import registry; registry.load();"
                             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
                             "('boto3','botocore','obstore','azure','google')))", cwd=tmp_path)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr
    assert "PLANTED-api-key-1" not in up.stdout + up.stderr


def test_broken_dropped_in_module_is_reported_and_others_work(tmp_path):
    site = _package_copy_with(tmp_path, "import no_such_sdk_anywhere\n")
    r = _run(site, "-m", "ml_analytics", "providers", cwd=tmp_path)
    assert r.returncode == 0
    assert "broken provider dropped: ModuleNotFoundError: No module named 'no_such_sdk_anywhere'" in r.stderr
    assert "[LOCAL]" in r.stdout
    up = _run(site, "-m", "ml_analytics", "upload", EXAMPLE_DATA, cwd=tmp_path)
    assert up.returncode == 0, up.stderr


def test_init_writes_a_skeleton_that_check_understands(cli, tmp_path):
    r = cli("init", "--provider", "aws", "--provider", "local")
    assert r.code == 0 and "wrote config.ini" in r.out
    cfg = tmp_path / "config.ini"
    assert cfg.stat().st_mode & 0o077 == 0
    text = cfg.read_text()
    assert "[AWS]" in text and "bucket_name =" in text and "# bucket (required)" in text
    assert "secret_access_key =" in text and "ML_ANALYTICS_AWS_SECRET_ACCESS_KEY" in text
    check = cli("check", "--offline")  # ./config.ini is picked up
    assert check.code == 0 and "skip  [AWS] not configured" in check.out and "ok    [LOCAL]" in check.out
    filled = text.replace("bucket_name =\n", "bucket_name = reports\n", 1)
    cfg.write_text(filled)
    check = cli("check", "--offline")
    assert check.code == 0 and "ok    [AWS] config valid" in check.out
    again = cli("init")
    assert again.code == 2 and "exists; pass --force" in again.err


def test_the_guide_shows_the_plugin_as_it_is():
    """docs/adding-a-cloud-provider.md prints the PRESIGNED plugin "in full": it must not drift."""
    root = Path(__file__).resolve().parents[1]
    guide = (root / "docs" / "adding-a-cloud-provider.md").read_text()
    source = (root / "examples" / "provider-plugin" / "ml_analytics_presigned" / "__init__.py").read_text()
    marker = "`examples/provider-plugin/ml_analytics_presigned/__init__.py`, in full:\n\n```python\n"
    shown = guide.split(marker, 1)[1].split("```\n", 1)[0]
    assert shown == source
