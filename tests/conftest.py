"""Shared fixtures: a CLI runner in a subprocess and a scratch working folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DATA = REPO / "examples" / "data"
# Azurite, installed by the README's test command (npm ci --prefix tests/node), for the server helpers.
_NODE_BIN = REPO / "tests" / "node" / "node_modules" / ".bin" / "azurite-blob"
if _NODE_BIN.exists():
    os.environ.setdefault("ML_ANALYTICS_AZURITE_BLOB", str(_NODE_BIN))


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(*args, cwd=None, env=None, timeout=300, input=None) -> Run:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ML_ANALYTICS_")}
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "ml_analytics", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(tmp_path):
    """Run ``ml-analytics`` in a subprocess with ``tmp_path`` as the working folder."""

    def _run(*args, **kw):
        kw.setdefault("cwd", tmp_path)
        return run_cli(*args, **kw)

    return _run


@pytest.fixture
def write_config(tmp_path):
    def _write(text: str, name: str = "config.ini", mode: int = 0o600) -> Path:
        p = tmp_path / name
        p.write_text(text)
        p.chmod(mode)
        return p

    return _write


# -- real storage servers, one per session ------------------------------------------------------
@pytest.fixture(scope="session")
def seaweed():
    from ml_analytics.testing.servers import SeaweedFS

    server = SeaweedFS().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def azurite():
    from ml_analytics.testing.servers import Azurite

    server = Azurite().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def fake_gcs():
    from ml_analytics.testing.servers import FakeGCS

    server = FakeGCS().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def spark():
    """One local Spark (2 cores, 4 attempts per task) for the session: test_spark.py and the real-Druid
    handoff from a write_partitions manifest."""
    pytest.importorskip("pyspark")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # executors: this venv's interpreter
    if not os.environ.get("JAVA_HOME") and os.path.isdir("/usr/lib/jvm/java-17-openjdk-amd64"):
        os.environ["JAVA_HOME"] = "/usr/lib/jvm/java-17-openjdk-amd64"
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2,4]").appName("ml-analytics-tests")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4").config("spark.driver.memory", "1g").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()



@pytest.fixture
def proxy_factory():
    """make(port, rule): a FaultProxy in front of a server, closed after the test."""
    from ml_analytics.testing.proxy import FaultProxy

    made = []

    def make(port, rule):
        proxy = FaultProxy(port, rule)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


@pytest.fixture(scope="session")
def gcs_key():
    """The service-account key the ml-core-service stand-in signs GCS URLs with (tests/mlcore_double.py)."""
    from mlcore_double import GcsKey

    return GcsKey()


@pytest.fixture(scope="session")
def gcs_gateway(fake_gcs, gcs_key):
    """GCS's XML API for signed URLs, in front of fake-gcs-server (which has only the JSON API)."""
    from mlcore_double import GcsXmlGateway

    gateway = GcsXmlGateway(fake_gcs.endpoint, gcs_key)
    yield gateway
    gateway.close()

def fresh_name(prefix: str = "b") -> str:
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:12]}"
