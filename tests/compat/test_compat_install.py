"""``ml-analytics compat install``: what it writes, refusing, --force with a backup, upgrading in place."""

from __future__ import annotations

import ast
import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest
from deployment import Deployment

from ml_analytics.compat.install import MARKER, MODULES, RELEASES, SOURCES

SHIM_DIR = Path(__file__).resolve().parents[2] / "src" / "ml_analytics" / "compat" / "shim"
STDLIB_ONLY = {"atexit", "configparser", "json", "os", "shutil", "subprocess", "sys", "tempfile", "_ml_analytics_runner"}


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_refuses_foreign_modules_without_force_and_writes_nothing(tmp_path):
    dep = Deployment(tmp_path, "[ORACLE]\nbucket_name = b\n")
    before = _snapshot(dep.cloud_storage)
    r = dep.install()
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{dep.cloud_storage / 'cloud.py'}: not written by ml-analytics compat install" in r.stderr
    assert "--force" in r.stderr and r.stderr.count("\n") == 1
    assert _snapshot(dep.cloud_storage) == before


def test_force_keeps_a_backup_then_rerun_upgrades_in_place(tmp_path):
    dep = Deployment(tmp_path, "[ORACLE]\nbucket_name = b\n")
    original = (dep.cloud_storage / "cloud.py").read_bytes()
    r = dep.install("--force")
    assert r.returncode == 0, r.stderr
    backups = list(dep.cloud_storage.glob("ml-analytics-compat-backup-*/cloud.py"))
    assert len(backups) == 1 and backups[0].read_bytes() == original
    assert f"replaced  {dep.cloud_storage / 'cloud.py'} (original kept in {backups[0]})" in r.stdout
    assert f"new       {dep.cloud_storage / 'aws.py'}" in r.stdout
    assert f"--config {dep.config}" in r.stdout and "to go back: cp -p" in r.stdout
    for name in MODULES:
        first = (dep.cloud_storage / name).read_text().splitlines()[0]
        assert first.startswith(MARKER) and "@VERSION@" not in first, name
    runner = (dep.cloud_storage / "_ml_analytics_runner.py").read_text()
    recorded = Path(sys.executable).parent / "ml-analytics"
    assert f"COMMAND = [{str(recorded)!r}]" in runner
    assert (dep.cloud_storage / "__init__.py").read_bytes() == b""  # not ours: left alone

    # an older version of our own file: upgraded in place, no --force needed, no new backup
    (dep.cloud_storage / "aws.py").write_text(MARKER + " 0.0.1; re-run it to upgrade, do not edit.\nold = 1\n")
    again = dep.install()
    assert again.returncode == 0, again.stderr
    assert f"upgraded  {dep.cloud_storage / 'aws.py'}" in again.stdout
    assert f"unchanged {dep.cloud_storage / 'cloud.py'}" in again.stdout
    assert "old = 1" not in (dep.cloud_storage / "aws.py").read_text()
    assert len(list(dep.cloud_storage.glob("ml-analytics-compat-backup-*"))) == 1


def test_going_back_restores_the_original(tmp_path):
    dep = Deployment(tmp_path, "[ORACLE]\nbucket_name = b\n")
    original = (dep.cloud_storage / "cloud.py").read_bytes()
    assert dep.install("--force").returncode == 0
    (backup,) = dep.cloud_storage.glob("ml-analytics-compat-backup-*")
    subprocess.run(f"cp -p {backup}/*.py {dep.cloud_storage}/", shell=True, check=True)
    assert (dep.cloud_storage / "cloud.py").read_bytes() == original


def test_target_that_is_a_file_is_a_usage_error(tmp_path):
    f = tmp_path / "cloud_storage"
    f.write_text("")
    r = subprocess.run([sys.executable, "-m", "ml_analytics", "compat", "install", str(f)], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "not a folder" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("name", SOURCES)
def test_shims_import_only_the_standard_library(name):
    tree = ast.parse((SHIM_DIR / name).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0] or "_ml_analytics_runner")
    assert imported <= STDLIB_ONLY, imported - STDLIB_ONLY


def _python36():
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6.*/bin/python")))
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        found += sorted(glob.glob(os.path.join(root, "versions", "3.6.*", "bin", "python")))
    except OSError:
        pass
    return found[-1] if found else None


def test_shims_compile_under_python_3_6(tmp_path):
    py36 = _python36()
    if py36 is None:
        pytest.skip("no Python 3.6 interpreter")
    files = []
    for release in RELEASES:  # every release's modules, as written
        dep = Deployment(tmp_path / release, "[ORACLE]\nbucket_name = b\n")
        assert dep.install("--force", "--release", release).returncode == 0
        files += [str(dep.cloud_storage / n) for n in RELEASES[release]]
    r = subprocess.run([py36, "-c", "import sys, py_compile\nfor f in sys.argv[1:]: py_compile.compile(f, doraise=True)",
                        *files], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_shim_refuses_a_folder_as_file_name_as_the_library_does(tmp_path):
    """upload_to_cloud(blob_Path, local_Path, file_Name) with file_Name an (empty) folder: the original and
    the library refuse it; the shim used to return [] (nothing stored, no error)."""
    dep = Deployment(tmp_path, f"[LOCAL]\nroot = {tmp_path / 'store'}\n")
    assert dep.install("--force").returncode == 0
    (tmp_path / "out" / "empty").mkdir(parents=True)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from cloud import MultiCloud, CloudUploadError\n"
            "try:\n    print(MultiCloud().upload_to_cloud('p', sys.argv[2], 'empty'))\n"
            "except CloudUploadError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(dep.cloud_storage), str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("refused:") and "is a directory, expected a file" in out.stdout, out
