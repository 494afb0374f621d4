"""A real single-machine Apache Druid on loopback, for the integration tests and the benchmark (test harness:
it lives beside the tests, not in the wheel, since it builds from ``tests/druid/pom.xml``).

Layout: ``tests/druid/pom.xml`` resolves druid-services and the S3 / Azure extensions from Maven
Central into ``lib/`` and ``extensions/<name>/`` (once per pom content, cached under
``~/.cache/ml-analytics-druid/`` or ``$ML_ANALYTICS_DRUID_HOME``; the local Maven repository is reused).
:class:`DruidCluster` writes ``conf/`` itself and starts ZooKeeper, a coordinator that is also the
overlord, an indexer (tasks run as threads: no JVM per task), a historical and a broker, each on a
free loopback port, with Derby metadata, local deep storage and no metrics emitter. Every process is
stopped by its process id.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ml_analytics.testing.servers import Server, Stoppable, free_port

POM_DIR = Path(__file__).resolve().parents[1] / "druid"  # tests/druid/pom.xml
EXTENSIONS = ("druid-s3-extensions", "druid-azure-extensions")

# Java 17 strong encapsulation: the flags Druid's Java documentation lists.
JAVA_MODULE_FLAGS = [
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
]

LOG4J2 = """<?xml version="1.0" encoding="UTF-8" ?>
<Configuration status="WARN">
  <Appenders>
    <Console name="Console" target="SYSTEM_OUT">
      <PatternLayout pattern="%d{ISO8601} %p [%t] %c{1} - %m%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="warn"><AppenderRef ref="Console"/></Root>
    <Logger name="org.apache.druid.indexing" level="info" additivity="false"><AppenderRef ref="Console"/></Logger>
    <Logger name="org.apache.druid.cli" level="info" additivity="false"><AppenderRef ref="Console"/></Logger>
  </Loggers>
</Configuration>
"""


def java_bin() -> str:
    home = os.environ.get("DRUID_JAVA_HOME") or os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    for candidate in ("/usr/lib/jvm/java-17-openjdk-amd64/bin/java",):
        if Path(candidate).exists():
            return candidate
    found = shutil.which("java")
    if not found:
        raise RuntimeError("java not found: install OpenJDK 17 (apt-get install openjdk-17-jdk-headless)")
    return found


def _pom_digest() -> str:
    h = hashlib.sha256()
    for pom in sorted(POM_DIR.rglob("pom.xml")):
        if ".build" in pom.parts:
            continue
        h.update(str(pom.relative_to(POM_DIR)).encode())
        h.update(pom.read_bytes())
    return h.hexdigest()[:16]


def pom_property(name: str) -> str:
    import re

    m = re.search(rf"<{re.escape(name)}>([^<]+)</", (POM_DIR / "pom.xml").read_text())
    if not m:
        raise RuntimeError(f"{POM_DIR / 'pom.xml'}: no <{name}>")
    return m.group(1).strip()


def layout_home() -> Path:
    base = os.environ.get("ML_ANALYTICS_DRUID_HOME")
    root = Path(base) if base else Path.home() / ".cache" / "ml-analytics-druid"
    return root / f"{pom_property('druid.version')}-{_pom_digest()}"


def assemble(dest: Path | None = None) -> Path:
    """lib/ and extensions/ for the pom's Druid, resolved with Maven once and cached."""
    dest = dest or layout_home()
    if (dest / ".complete").exists():
        return dest
    mvn = shutil.which("mvn")
    if not mvn:
        raise RuntimeError("mvn not found: install Maven (apt-get install maven)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".assembling-", dir=dest.parent))
    try:
        proc = subprocess.run([mvn, "-q", "-B", "-f", str(POM_DIR / "pom.xml"), "package",
                               f"-Ddruid.layout={work}"], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"mvn could not lay out Druid (exit {proc.returncode}): "
                               f"{(proc.stdout + proc.stderr)[-3000:]}")
        _drop_jars_core_has(work)
        (work / "hadoop-dependencies").mkdir(exist_ok=True)
        (work / ".complete").write_text(json.dumps({"pom": _pom_digest()}) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        work.rename(dest)
        for stale in dest.parent.iterdir():  # layouts of older pom contents
            if stale != dest and stale.is_dir() and (stale / ".complete").exists():
                shutil.rmtree(stale, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def _artifact(jar: str) -> str:
    """Artifact id of a Maven-named jar: 'jackson-core-2.12.7.jar' -> 'jackson-core'."""
    parts = jar[:-4].split("-")
    for i, part in enumerate(parts):
        if part[:1].isdigit():
            return "-".join(parts[:i])
    return jar[:-4]


def _drop_jars_core_has(layout: Path) -> None:
    """An extension's copy of a library lib/ already has would only shadow or clash: keep lib's."""
    core = {_artifact(j.name) for j in (layout / "lib").glob("*.jar")}
    for ext in (layout / "extensions").iterdir():
        for jar in ext.glob("*.jar"):
            if _artifact(jar.name) in core:
                jar.unlink()


def _http_ok(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class ZooKeeper(Server):
    name = "zookeeper"

    def __init__(self, layout: Path, workdir: Path):
        super().__init__(workdir)
        self.layout = layout
        self.port = free_port()

    def command(self):
        cfg = self.workdir / "zoo.cfg"
        cfg.write_text(f"tickTime=2000\ndataDir={self.workdir / 'data'}\nclientPort={self.port}\n"
                       "clientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxClientCnxns=0\n"
                       "4lw.commands.whitelist=ruok\n")
        return [java_bin(), "-Xms64m", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                f"-Dlog4j.configurationFile={self.workdir / 'log4j2.xml'}", "-Dzookeeper.jmx.log4j.disable=true",
                "-cp", f"{self.layout / 'lib'}/*", "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                str(cfg)], {}

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"ruok")
            return s.recv(4) == b"imok"


class DruidService(Server):
    """One Druid process: ``java ... org.apache.druid.cli.Main server <kind>``."""

    def __init__(self, kind: str, layout: Path, workdir: Path, conf: Path, heap: str, direct: str,
                 properties: dict[str, str]):
        self.name = kind
        super().__init__(workdir)
        self.kind, self.layout, self.conf = kind, layout, conf
        self.heap, self.direct = heap, direct
        self.extra_jvm_flags: list[str] = []
        self.port = free_port()
        self.properties = {"druid.plaintextPort": str(self.port), **properties}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self):
        own = self.conf / self.kind
        own.mkdir(parents=True, exist_ok=True)
        (own / "runtime.properties").write_text(
            "".join(f"{k}={v}\n" for k, v in self.properties.items()))
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        cmd = [java_bin(), "-server", f"-Xms{self.heap}", f"-Xmx{self.heap}",
               f"-XX:MaxDirectMemorySize={self.direct}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-XX:+ExitOnOutOfMemoryError", "-Duser.timezone=UTC", "-Dfile.encoding=UTF-8",
               f"-Djava.io.tmpdir={tmp}", "-Djava.util.logging.manager=org.apache.logging.log4j.jul.LogManager",
               f"-Dlog4j.configurationFile={self.conf / '_common' / 'log4j2.xml'}",
               f"-Djdk.net.hosts.file={self.conf / '_common' / 'hosts'}",
               *self.extra_jvm_flags,
               *JAVA_MODULE_FLAGS,
               "-cp", f"{self.conf / '_common'}:{own}:{self.layout / 'lib'}/*",
               "org.apache.druid.cli.Main", "server", self.kind]
        return cmd, {"AWS_REGION": "us-east-1"}

    def ready(self) -> bool:
        return _http_ok(f"{self.url}/status/health")

    def launch(self) -> "DruidService":
        cmd, env = self.command()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "GOOGLE_"))}
        full_env.update(env)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.workdir)
        return self


class TLSFront:
    """HTTPS on a loopback port, forwarding bytes to a plain-HTTP loopback port (Azurite).

    Druid 29's Azure extension always builds ``https://<account>.blob.<suffix>``; Azurite serves the
    tests over plain HTTP. This front holds a self-signed certificate for ``<account>.blob.localhost``
    and a PKCS12 trust store with only that certificate, which the Druid JVMs are given.
    """

    def __init__(self, workdir: Path, hostname: str, target_port: int):
        self.workdir, self.hostname, self.target_port = workdir, hostname, target_port
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.truststore = self.workdir / "truststore.p12"
        self._sock: socket.socket | None = None
        self._stopping = False

    def _certificate(self) -> tuple[Path, Path]:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.hostname)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=7))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(self.hostname)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        cert_path, key_path = self.workdir / "cert.pem", self.workdir / "key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        keytool = Path(java_bin()).with_name("keytool")
        subprocess.run([str(keytool), "-importcert", "-noprompt", "-alias", "azurite", "-file", str(cert_path),
                        "-keystore", str(self.truststore), "-storetype", "PKCS12", "-storepass", "changeit"],
                       check=True, capture_output=True)
        return cert_path, key_path

    def start(self) -> "TLSFront":
        import ssl
        import threading

        cert, key = self._certificate()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._sock.settimeout(0.5)

        def pump(src, dst):
            try:
                while chunk := src.recv(65536):
                    dst.sendall(chunk)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def serve_one(raw):
            try:
                conn = ctx.wrap_socket(raw, server_side=True)
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=30)
            except OSError:
                raw.close()
                return
            conn.settimeout(None)
            upstream.settimeout(None)
            threading.Thread(target=pump, args=(upstream, conn), daemon=True).start()
            pump(conn, upstream)

        def accept_loop():
            while not self._stopping:
                try:
                    raw, _ = self._sock.accept()
                except (socket.timeout, TimeoutError):
                    continue
                except OSError:
                    return
                raw.settimeout(10)
                threading.Thread(target=serve_one, args=(raw,), daemon=True).start()

        threading.Thread(target=accept_loop, daemon=True, name="azurite-tls-front").start()
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._sock:
            self._sock.close()


class DruidCluster(Stoppable):
    """ZooKeeper + coordinator/overlord + indexer + historical + broker on loopback.

    ``azure`` = (account, key, blob port) points the Azure extension at Azurite: the extension builds
    ``http://<account>.blob.<suffix>``, so the suffix is ``localhost:<port>`` and the JVMs resolve
    ``<account>.blob.localhost`` to 127.0.0.1 through a hosts file of their own (``jdk.net.hosts.file``);
    that extension speaks only HTTPS, so a :class:`TLSFront` stands before Azurite.
    ``s3`` = (endpoint, access key, secret key) is Druid's own S3 client, used by ``s3`` input sources
    without an ``endpointConfig`` (what the project writes for [AWS]); the keys are Druid's, never the spec's.
    """

    def __init__(self, workdir: str | os.PathLike | None = None, layout: Path | None = None,
                 s3: tuple[str, str, str] | None = None, azure: tuple[str, str, int] | None = None,
                 worker_capacity: int = 2):
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="ml-analytics-druid-"))
        self.layout = layout
        self.s3, self.azure = s3, azure
        self.tls_front: TLSFront | None = None
        self.worker_capacity = worker_capacity
        self.services: list[Server] = []
        self.start_seconds: float | None = None

    # -- URLs the project talks to ---------------------------------------------------------------
    @property
    def coordinator(self) -> DruidService:
        return self._by_kind("coordinator")

    @property
    def broker(self) -> DruidService:
        return self._by_kind("broker")

    @property
    def task_url(self) -> str:
        """The Overlord's task endpoint: what ``[DRUID] batch_url`` names."""
        return f"{self.coordinator.url}/druid/indexer/v1/task"

    @property
    def sql_url(self) -> str:
        return f"{self.broker.url}/druid/v2/sql"

    @property
    def query_url(self) -> str:
        """Native query endpoint, as a deployment's ``urlQuery`` names it."""
        return f"{self.broker.url}/druid/v2?pretty"

    def _by_kind(self, kind: str) -> DruidService:
        for s in self.services:
            if getattr(s, "kind", None) == kind:
                return s
        raise KeyError(kind)

    # -- conf ---------------------------------------------------------------------------------
    def _common(self, zk_port: int, derby_port: int) -> dict[str, str]:
        var = self.workdir / "var"
        props = {
            "druid.extensions.directory": str(self.layout / "extensions"),
            "druid.extensions.hadoopDependenciesDir": str(self.layout / "hadoop-dependencies"),
            "druid.extensions.loadList": json.dumps(list(EXTENSIONS)),
            "druid.host": "127.0.0.1",
            "druid.bindOnHost": "true",
            "druid.startup.logging.logProperties": "false",
            "druid.zk.service.host": f"127.0.0.1:{zk_port}",
            "druid.zk.paths.base": "/druid",
            "druid.metadata.storage.type": "derby",
            "druid.metadata.storage.connector.connectURI":
                f"jdbc:derby://127.0.0.1:{derby_port}/{var / 'metadata.db'};create=true",
            "druid.metadata.storage.connector.host": "127.0.0.1",
            "druid.metadata.storage.connector.port": str(derby_port),
            "druid.storage.type": "local",
            "druid.storage.storageDirectory": str(var / "segments"),
            "druid.indexer.logs.type": "file",
            "druid.indexer.logs.directory": str(var / "indexing-logs"),
            "druid.selectors.indexing.serviceName": "druid/overlord",
            "druid.selectors.coordinator.serviceName": "druid/coordinator",
            "druid.emitter": "noop",
            "druid.monitoring.monitors": "[]",
            "druid.indexing.doubleStorage": "double",
            "druid.server.hiddenProperties": json.dumps(["druid.s3.accessKey", "druid.s3.secretKey",
                                                         "druid.azure.key",
                                                         "druid.metadata.storage.connector.password"]),
            "druid.sql.enable": "true",
            "druid.lookup.enableLookupSyncOnStartup": "false",
            "druid.processing.buffer.sizeBytes": str(32 * 1024 * 1024),
            "druid.processing.numThreads": "1",
            "druid.processing.numMergeBuffers": "1",
            "druid.server.http.numThreads": "12",
            "druid.global.http.numConnections": "8",
            # S3: per-spec endpointConfig / properties carry endpoint and keys; the client still
            # needs a region to be built at start.
            "druid.s3.endpoint.signingRegion": "us-east-1",
            "druid.s3.enablePathStyleAccess": "true",
            "druid.s3.protocol": "http",
        }
        if self.s3:
            endpoint, access, secret = self.s3
            props.update({"druid.s3.endpoint.url": endpoint, "druid.s3.accessKey": access,
                          "druid.s3.secretKey": secret})
        if self.azure:
            account, key, _ = self.azure
            props.update({"druid.azure.account": account, "druid.azure.key": key,
                          "druid.azure.container": "druid", "druid.azure.protocol": "https",
                          "druid.azure.endpointSuffix": f"localhost:{self.tls_front.port}",
                          "druid.azure.maxTries": "2"})
        return props

    def _write_common(self, props: dict[str, str]) -> Path:
        conf = self.workdir / "conf"
        common = conf / "_common"
        common.mkdir(parents=True, exist_ok=True)
        (common / "common.runtime.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (common / "log4j2.xml").write_text(LOG4J2)
        # The JVMs resolve names from this file only: the machine's own name too (Druid asks for it).
        hosts = f"127.0.0.1 localhost {socket.gethostname()}\n"
        if self.azure:
            hosts += f"127.0.0.1 {self.azure[0]}.blob.localhost\n"
        (common / "hosts").write_text(hosts)
        return conf

    def start(self, timeout: float = 300) -> "DruidCluster":
        t0 = time.monotonic()
        self.layout = self.layout or assemble()
        var = self.workdir / "var"
        for sub in ("segments", "indexing-logs", "segment-cache", "tasks"):
            (var / sub).mkdir(parents=True, exist_ok=True)
        zk = ZooKeeper(self.layout, self.workdir / "zookeeper")
        self.services.append(zk)
        if self.azure:
            self.tls_front = TLSFront(self.workdir / "azure-tls", f"{self.azure[0]}.blob.localhost",
                                      self.azure[2]).start()
        conf = self._write_common(self._common(zk.port, free_port()))
        (zk.workdir / "log4j2.xml").write_text(LOG4J2)
        try:
            zk.start(timeout=60)
            def svc(kind, heap, direct, **props):
                s = DruidService(kind, self.layout, self.workdir / kind, conf, heap, direct, props)
                self.services.append(s)
                return s
            coordinator = svc("coordinator", "384m", "64m", **{
                "druid.service": "druid/coordinator",
                "druid.coordinator.asOverlord.enabled": "true",
                "druid.coordinator.asOverlord.overlordService": "druid/overlord",
                "druid.coordinator.startDelay": "PT1S",
                "druid.coordinator.period": "PT1S",
                "druid.manager.segments.pollDuration": "PT1S",
                # a push of the example makes ~136 DAY segments: ask the historical to load 4 at a time
                # (the default is 1 per request), so a busy machine does not queue them for minutes
                "druid.coordinator.loadqueuepeon.http.batchSize": "4",
                "druid.indexer.queue.startDelay": "PT0S",
                "druid.indexer.runner.type": "remote",
                "druid.indexer.storage.type": "metadata",
            })
            indexer = svc("indexer", "512m", "192m", **{
                "druid.service": "druid/indexer",
                "druid.worker.capacity": str(self.worker_capacity),
                "druid.worker.ip": "127.0.0.1",
                "druid.indexer.task.baseTaskDir": str(var / "tasks"),
                "druid.indexer.task.defaultHadoopCoordinates": "[]",
                "druid.indexer.task.restoreTasksOnRestart": "false",
            })
            historical = svc("historical", "384m", "192m", **{
                "druid.service": "druid/historical",
                "druid.segmentCache.locations": json.dumps([{"path": str(var / "segment-cache"),
                                                             "maxSize": "2g"}]),
                "druid.server.maxSize": str(2 * 1024 ** 3),
                "druid.segmentCache.numLoadingThreads": "5",
                "druid.cache.sizeInBytes": "0",
            })
            broker = svc("broker", "384m", "192m", **{
                "druid.service": "druid/broker",
                "druid.broker.http.numConnections": "4",
                "druid.broker.cache.useCache": "false",
                "druid.broker.cache.populateCache": "false",
            })
            if self.tls_front:
                for s in self.services[1:]:
                    s.extra_jvm_flags += [f"-Djavax.net.ssl.trustStore={self.tls_front.truststore}",
                                          "-Djavax.net.ssl.trustStorePassword=changeit",
                                          "-Djavax.net.ssl.trustStoreType=PKCS12"]
            coordinator.launch()
            self._wait([coordinator], t0 + timeout)
            for s in (indexer, historical, broker):
                s.launch()
            self._wait([indexer, historical, broker], t0 + timeout)
            self._wait_for(lambda: self._broker_sees_historical(), t0 + timeout, "broker to see the historical")
            self._wait_for(lambda: self._overlord_has_worker(), t0 + timeout, "overlord to see the indexer")
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _wait(self, services: list[DruidService], deadline: float) -> None:
        pending = list(services)
        while pending:
            for s in list(pending):
                if s.proc.poll() is not None:
                    raise RuntimeError(f"druid {s.kind} exited with {s.proc.returncode}: {s.tail_log(3000)}")
                if s.ready():
                    pending.remove(s)
            if pending and time.monotonic() > deadline:
                raise RuntimeError("druid not healthy in time: " + "; ".join(
                    f"{s.kind}: {s.tail_log(1500)}" for s in pending))
            time.sleep(0.5)

    def _wait_for(self, check, deadline: float, what: str) -> None:
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.5)

    def _broker_sees_historical(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.broker.url}/druid/broker/v1/readiness", timeout=2) as r:
                if r.status != 200:
                    return False
            with urllib.request.urlopen(f"{self.coordinator.url}/druid/coordinator/v1/servers?simple",
                                        timeout=2) as r:
                return any(s.get("type") == "historical" for s in json.load(r))
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _overlord_has_worker(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.coordinator.url}/druid/indexer/v1/workers", timeout=2) as r:
                return len(json.load(r)) > 0
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def sql(self, query: str) -> list:
        req = urllib.request.Request(self.sql_url, data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def stop(self) -> None:
        for s in reversed(self.services):
            s.stop()
        if self.tls_front:
            self.tls_front.stop()


if __name__ == "__main__":  # python tests/harness/druid.py: start, print URLs, wait for Ctrl-C
    import signal

    def _stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    cluster = DruidCluster(workdir=os.environ.get("DRUID_WORKDIR") or None)
    try:
        cluster.start()
        print(json.dumps({"task_url": cluster.task_url, "sql_url": cluster.sql_url,
                          "start_seconds": round(cluster.start_seconds, 1), "workdir": str(cluster.workdir)}),
              flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.cleanup()
