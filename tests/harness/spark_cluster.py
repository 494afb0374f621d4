"""A real Spark standalone cluster on loopback: a master and two workers as separate processes.

Started from the pyspark wheel's own ``bin/spark-class`` (the wheel ships no start scripts; ``spark-class``
execs the JVM, so the process id is the daemon's). The workers listen on two loopback addresses,
127.0.0.1 and 127.0.0.2: Spark never launches a speculative copy of a task on a host that already runs
one, so speculation needs two hosts. With ``secret``, the master, the workers and every driver run with
``spark.authenticate`` and ``spark.network.crypto.enabled`` (the secret in a 0600 spark-defaults.conf,
never on a command line; workers hand it to executors in their environment). Everything binds to
loopback (``SPARK_LOCAL_IP``); the master and worker web UIs cannot be turned off, only put on random
ports. Every process is stopped by its process group.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from ml_analytics.testing.servers import Stoppable, free_port

JAVA_17 = "/usr/lib/jvm/java-17-openjdk-amd64"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


class SparkCluster(Stoppable):
    def __init__(self, workdir: Path, *, hosts=("127.0.0.1", "127.0.0.2"), secret: str | None = None,
                 worker_memory: str = "1g"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.hosts, self.secret, self.worker_memory = hosts, secret, worker_memory
        self.port = free_port()
        self.master: subprocess.Popen | None = None
        self.workers: dict[int, subprocess.Popen] = {}
        self.conf_dir = self.workdir / "conf"
        self.conf_dir.mkdir(exist_ok=True)
        self.defaults = self.conf_dir / "spark-defaults.conf"
        lines = ["spark.ui.enabled false", "spark.master.rest.enabled false"]
        if secret:
            lines += ["spark.authenticate true", f"spark.authenticate.secret {secret}",
                      "spark.network.crypto.enabled true"]
        fd = os.open(self.defaults, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _env(self, host: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
        env.update(SPARK_HOME=str(spark_home()), SPARK_CONF_DIR=str(self.conf_dir), SPARK_LOCAL_IP=host,
                   SPARK_DAEMON_MEMORY="384m", PYSPARK_PYTHON=sys.executable,
                   JAVA_HOME=os.environ.get("JAVA_HOME") or JAVA_17)
        return env

    def _spawn(self, name: str, args: list[str], host: str) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        return subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *args], env=self._env(host),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout: float = 120) -> "SparkCluster":
        self.master = self._spawn("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                             "--port", str(self.port), "--webui-port", "0"], "127.0.0.1")
        self._wait_log("master", r"I have been elected leader", timeout)
        for i in range(len(self.hosts)):
            self.start_worker(i, timeout)
        return self

    def start_worker(self, i: int, timeout: float = 120) -> None:
        host = self.hosts[i]
        work = self.workdir / f"work-{i}"
        work.mkdir(exist_ok=True)
        log = self.workdir / f"worker-{i}.log"
        before = log.read_text(errors="replace").count("Successfully registered with master") if log.exists() else 0
        self.workers[i] = self._spawn(f"worker-{i}", ["org.apache.spark.deploy.worker.Worker", self.url, "--host", host,
                                                      "--cores", "1", "--memory", self.worker_memory,
                                                      "--webui-port", "0", "--work-dir", str(work)], host)
        self._wait_log(f"worker-{i}", r"Successfully registered with master", timeout, at_least=before + 1)

    def _wait_log(self, name: str, pattern: str, timeout: float, at_least: int = 1) -> None:
        path = self.workdir / f"{name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = path.read_text(errors="replace") if path.exists() else ""
            if len(re.findall(pattern, text)) >= at_least:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"spark {name} did not come up in {timeout} s: {text[-1500:]}")

    def kill_worker(self, i: int) -> None:
        """SIGKILL a worker, its executor and the executor's Python workers (a machine that dies)."""
        proc = self.workers.pop(i, None)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in _descendants_of_work_dir(self.workdir / f"work-{i}"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def driver_conf(self) -> dict[str, str]:
        """What a driver of this cluster sets (the secret included when the cluster has one)."""
        conf = {"spark.master": self.url, "spark.ui.enabled": "false", "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1", "spark.executor.memory": "512m",
                "spark.driver.memory": "512m", "spark.ui.showConsoleProgress": "false"}
        if self.secret:
            conf.update({"spark.authenticate": "true", "spark.authenticate.secret": self.secret,
                         "spark.network.crypto.enabled": "true"})
        return conf

    def stop(self) -> None:
        for i in list(self.workers):
            self.kill_worker(i)
        if self.master and self.master.poll() is None:
            os.killpg(self.master.pid, signal.SIGTERM)
            try:
                self.master.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.master.pid, signal.SIGKILL)
                self.master.wait()


def _descendants_of_work_dir(work: Path) -> list[int]:
    """Executor JVMs (and their Python daemons) a worker started: their command lines name its work dir
    or their working directory is in it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(work)) or str(work) in cmd:
            found.append(int(entry.name))
    return found
