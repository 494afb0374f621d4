"""Upload benchmark for Azure (Azurite) and GCS (fake-gcs-server): this project against its peers.

Each repetition times every tool once on (a) one big file and (b) many small files, each against a
fresh emulator of its own (loopback; an emulator slows down as it fills); the table shows medians of
the repetitions (interleaved, so a machine that slows down weighs on every tool alike, in an order
rotated each repetition) and ratios = peer
time / this project's time, like for like (> 1: this project is faster): a command against
``ml-analytics upload``, a call inside the bench's process (SDKs already imported, no start-up)
against this project's library called the same way. Next to each result: the client's CPU and the
emulator's own CPU (psutil on the server process) per file or per MiB, so a reader sees when the
server is the ceiling.

    pip install -e '.[all,test,bench]'
    python bench/clouds.py                  # 1 x 256 MiB and 2000 x 8 KiB, 3 repetitions
    python bench/clouds.py --quick          # 64 MiB, 300 files, 1 repetition
    python bench/clouds.py --only azure     # one cloud; --tools rclone,SDK to pick peers
    python bench/clouds.py --profile        # also profile this project's client on each workload

Tools. Azure: ``ml-analytics upload`` and the same library in process (blocks with CRC64, the
default); rclone (azureblob remote, --transfers 16); the raw SDK (azure_sdk_raw.py: azure-storage-blob
12, one client, 16 threads for small files, 8 blocks of 8 MiB in flight for the big one, no
checksums) in process and as a command, and once more with ``validate_content`` (a Content-MD5 on
every request); obstore's AzureStore (64 puts in flight, its own multipart); the seed's code path (a
new client per file and ``upload_blob`` from the file, files one after another: the v12 equivalent of
the seed's ``BlockBlobService.create_blob_from_path``). GCS: ``ml-analytics upload`` and in process;
rclone (gcs remote, anonymous, custom endpoint); the raw SDK (google-cloud-storage, one client, 16
threads; the big file in one resumable chunk, its fastest setting here); the seed's code path (a new
client per file, ``upload_from_filename``, one after another). obstore's GCSStore writes through the
XML API, which fake-gcs-server lacks, so it has no GCS row.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
_AZURITE = Path(__file__).resolve().parents[1] / "tests" / "node" / "node_modules" / ".bin" / "azurite-blob"
if _AZURITE.exists():
    os.environ.setdefault("ML_ANALYTICS_AZURITE_BLOB", str(_AZURITE))
from azure_sdk_raw import sdk_put_all  # noqa: E402
from upload import Runner, make_data, native_binary  # noqa: E402

from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY, Azurite, FakeGCS  # noqa: E402

MiB = 1024 * 1024


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def own_cpu() -> float:
    return time.process_time()


def server_cpu(server) -> float:
    import psutil

    proc = psutil.Process(server.proc.pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


class Cloud(Runner):
    """One emulator and the tools that upload to it."""

    name = ""
    server_cls: type

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.server = None
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.rclone_bin = native_binary("rclone")

    def start(self) -> None:
        self.server = self.server_cls(workdir=self.workdir / f"{self.name}-{uuid.uuid4().hex[:6]}").start()
        self.bucket = f"bench-{uuid.uuid4().hex[:8]}"
        self.create_bucket()
        self.config = self.workdir / f"{self.name}.ini"
        self.config.write_text(self.config_text())
        self.config.chmod(0o600)

    def stop(self) -> None:
        if self.server:
            self.server.cleanup()
            shutil.rmtree(self.server.workdir, ignore_errors=True)  # a fresh emulator per run: GiBs otherwise
            self.server = None

    def project_in_process(self, path: Path, directory: bool) -> None:
        """This project's library (``MultiCloud.upload``) in the bench's own process, no start-up: the
        counterpart of the SDKs' in-process rows."""
        from ml_analytics.cloud_storage.cloud import MultiCloud

        with MultiCloud(self.config) as mc:
            failed = [r for r in mc.upload([path], self.prefix()) if r.status != "uploaded"]
        if failed:
            raise RuntimeError(f"ml-analytics in process: {failed[0].error}")

    def project_cmd(self, path: Path) -> list[str]:
        return [sys.executable, "-m", "ml_analytics", "upload", str(path), "--prefix", self.prefix(),
                "--config", str(self.config), "--json"]

    def rclone(self, path: Path, directory: bool) -> None:
        if not self.rclone_bin:
            raise SystemExit("bench: rclone not found; pip install -e '.[bench]'")
        self.run([self.rclone_bin, "copy", str(path), f"remote:{self.bucket}/{self.prefix()}", "--transfers", "16",
                  "--checkers", "16", *self.rclone_flags()], env=dict(self.env, RCLONE_CONFIG="/dev/null",
                                                                     **self.rclone_env()))

    @staticmethod
    def files(path: Path, directory: bool, limit: int | None = None) -> list[Path]:
        return sorted(path.iterdir())[:limit] if directory else [path]


class AzureCloud(Cloud):
    name = "azure"
    server_cls = Azurite

    def create_bucket(self) -> None:
        self.server.create_container(self.bucket)

    def config_text(self) -> str:
        return (f"[AZURE]\naccount_name = {AZURITE_ACCOUNT}\ncontainer_name = {self.bucket}\n"
                f"account_key = {AZURITE_KEY}\nendpoint_url = {self.server.endpoint}\n")

    def project_md5(self, path: Path, directory: bool) -> None:
        """``ml-analytics upload`` with ``checksum = md5``: the per-block check Azurite itself verifies."""
        config = self.workdir / "azure-md5.ini"
        config.write_text(self.config_text() + "checksum = md5\n")
        config.chmod(0o600)
        self.run([*self.project_cmd(path)[:-3], "--config", str(config), "--json"])

    def rclone_env(self) -> dict:
        return {"RCLONE_CONFIG_REMOTE_TYPE": "azureblob", "RCLONE_CONFIG_REMOTE_ACCOUNT": AZURITE_ACCOUNT,
                "RCLONE_CONFIG_REMOTE_KEY": AZURITE_KEY, "RCLONE_CONFIG_REMOTE_ENDPOINT": self.server.endpoint}

    def rclone_flags(self) -> list[str]:
        return []

    def _service(self, **kw):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(self.server.endpoint, credential={"account_name": AZURITE_ACCOUNT,
                                                                   "account_key": AZURITE_KEY}, **kw)

    def sdk(self, path: Path, directory: bool, validate: bool = False) -> None:
        """azure-storage-blob at its best measured settings (see azure_sdk_raw.py), in this process;
        ``validate``: with the SDK's per-request Content-MD5."""
        sdk_put_all(self.server.endpoint, AZURITE_ACCOUNT, AZURITE_KEY, self.bucket, self.prefix(), path, validate)

    def sdk_process(self, path: Path, directory: bool) -> None:
        """The same as a command of its own: the interpreter's start and the SDK's import count."""
        self.run([sys.executable, str(Path(__file__).with_name("azure_sdk_raw.py")), self.server.endpoint,
                  AZURITE_ACCOUNT, AZURITE_KEY, self.bucket, self.prefix(), str(path)])

    def sdk_md5(self, path: Path, directory: bool) -> None:
        self.sdk(path, directory, validate=True)

    def obstore(self, path: Path, directory: bool) -> None:
        import obstore as obs
        from obstore.store import AzureStore

        store = AzureStore(self.bucket, account_name=AZURITE_ACCOUNT, account_key=AZURITE_KEY,
                           endpoint=self.server.endpoint, client_options={"allow_http": True})
        prefix = self.prefix()
        with ThreadPoolExecutor(64) as pool:
            list(pool.map(lambda f: obs.put(store, f"{prefix}/{f.name}", f), self.files(path, directory)))

    def seed(self, path: Path, directory: bool, limit: int | None = None) -> None:
        """The seed's [AZURE] module: a client per upload, create_blob_from_path (2.x: 64 MiB single put,
        4 MiB blocks, 2 connections), files one after another, here with the v12 SDK's equivalent."""
        prefix = self.prefix()
        for f in self.files(path, directory, limit):
            service = self._service(max_single_put_size=64 * MiB, max_block_size=4 * MiB)
            with open(f, "rb") as fh:
                service.get_blob_client(self.bucket, f"{prefix}/{f.name}").upload_blob(fh, overwrite=True,
                                                                                      max_concurrency=2)


class GCSCloud(Cloud):
    name = "gcs"
    server_cls = FakeGCS

    def create_bucket(self) -> None:
        self.server.create_bucket(self.bucket)

    def config_text(self) -> str:
        return f"[GCP]\nbucket_name = {self.bucket}\nendpoint_url = {self.server.endpoint}\n"

    def rclone_env(self) -> dict:
        return {"RCLONE_CONFIG_REMOTE_TYPE": "google cloud storage", "RCLONE_CONFIG_REMOTE_ANONYMOUS": "true",
                "RCLONE_CONFIG_REMOTE_ENDPOINT": f"{self.server.endpoint}/storage/v1/",
                "RCLONE_CONFIG_REMOTE_BUCKET_POLICY_ONLY": "true"}

    def rclone_flags(self) -> list[str]:
        return []

    def _client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="bench", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.server.endpoint})

    def sdk(self, path: Path, directory: bool) -> None:
        """google-cloud-storage at its best measured settings: one client, 16 threads for small files;
        the big file in a single resumable chunk (fewer, bigger chunks were faster on this emulator)."""
        import requests

        client = self._client()
        adapter = requests.adapters.HTTPAdapter(pool_connections=32, pool_maxsize=32)
        client._http.mount("http://", adapter)
        bucket = client.bucket(self.bucket)
        prefix = self.prefix()
        if directory:
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda f: bucket.blob(f"{prefix}/{f.name}").upload_from_filename(str(f)),
                              self.files(path, True)))
        else:
            size = path.stat().st_size
            chunk = (size + 256 * 1024 - 1) // (256 * 1024) * (256 * 1024)
            bucket.blob(f"{prefix}/{path.name}", chunk_size=chunk).upload_from_filename(str(path))

    def seed(self, path: Path, directory: bool, limit: int | None = None) -> None:
        """The seed's [GCP] module: a client per upload (from the key file; anonymous here),
        ``blob.upload_from_filename``, files one after another."""
        prefix = self.prefix()
        for f in self.files(path, directory, limit):
            self._client().bucket(self.bucket).blob(f"{prefix}/{f.name}").upload_from_filename(str(f))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--big-mib", type=int, default=256)
    ap.add_argument("--small-count", type=int, default=2000)
    ap.add_argument("--small-kib", type=int, default=8)
    ap.add_argument("--seed-files", type=int, default=500, help="small files the (slow, sequential) seed path sends")
    ap.add_argument("--only", default="azure,gcs")
    ap.add_argument("--tools", default="", help="comma-separated tool names (this project always runs)")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "ml-analytics-bench-data")
    ap.add_argument("--quick", action="store_true", help="64 MiB, 300 files, 1 repetition")
    ap.add_argument("--workdir", type=Path, help="where the emulators keep their data (default /dev/shm)")
    ap.add_argument("--profile", action="store_true", help="profile this project's client (cProfile, top 15)")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.big_mib, args.small_count, args.seed_files = 1, 64, 300, 100
    data = make_data(args.data, args.big_mib, args.small_count, args.small_kib, 0)
    # The emulators keep their data in memory-backed /dev/shm where there is one: on a disk, the GiBs
    # each run writes and the next deletes made every tool's timing swing by up to 3x.
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="ml-analytics-bench-clouds-",
                                 dir=args.workdir or (shm if shm.is_dir() and os.access(shm, os.W_OK) else None)))
    try:
        for cloud_cls in (AzureCloud, GCSCloud):
            if cloud_cls.name in args.only.split(","):
                bench_cloud(cloud_cls(work), data, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_cloud(cloud: Cloud, data: dict, args) -> None:
    seed_n = min(args.seed_files, args.small_count)
    tools = [("ml-analytics upload", cloud.project, "sub", None),
             ("ml-analytics, in process", cloud.project_in_process, "own", None),
             ("rclone --transfers 16", cloud.rclone, "sub", None),
             ("raw SDK, best settings", cloud.sdk, "own", None)]
    if isinstance(cloud, AzureCloud):
        tools.insert(2, ("ml-analytics upload, checksum = md5", cloud.project_md5, "sub", None))
        tools.append(("raw SDK, as a command", cloud.sdk_process, "sub", None))
        tools.append(("raw SDK, per-request Content-MD5", cloud.sdk_md5, "own", None))
        tools.append(("obstore AzureStore", cloud.obstore, "own", None))
    tools.append((f"seed code path ({seed_n} files)" if seed_n < args.small_count else "seed code path",
                  cloud.seed, "own", seed_n))
    if args.tools:
        keep = args.tools.split(",")
        tools = [t for t in tools if t[0] in ("ml-analytics upload", "ml-analytics, in process")
                 or any(k in t[0] for k in keep)]
    results: dict[str, dict[str, list[tuple[float, float, float]]]] = {t[0]: {"big": [], "small": []} for t in tools}
    warm = cloud.workdir / "warm-up"
    warm.mkdir(exist_ok=True)
    for f in sorted(data["small"].iterdir())[:50]:
        shutil.copy(f, warm / f.name)
    for rep in range(args.reps):
        # Every tool meets an emulator of its own, fresh for each workload: Azurite slows down as it
        # fills (its blob records are re-saved as a whole), up to 3x over one repetition of every tool,
        # so a shared one would favour whoever goes first. The order is rotated each repetition too.
        for name, fn, where, limit in tools[rep % len(tools):] + tools[:rep % len(tools)]:
            for workload, path, directory in (("big", data["big"], False), ("small", data["small"], True)):
                cloud.start()
                try:
                    # Untimed warm-up with the raw SDK: a fresh emulator's first writes pay for its start
                    # (files, caches, a Go heap grown for a big upload).
                    cloud.sdk(path if workload == "big" else warm, directory)
                    cpu = child_cpu if where == "sub" else own_cpu
                    s0, c0, t0 = server_cpu(cloud.server), cpu(), time.perf_counter()
                    if directory and limit is not None:
                        fn(path, directory, limit=limit)
                    else:
                        fn(path, directory)
                    elapsed = time.perf_counter() - t0
                    results[name][workload].append((elapsed, cpu() - c0, server_cpu(cloud.server) - s0))
                finally:
                    cloud.stop()
            print(f"  {cloud.name} rep {rep + 1}/{args.reps} {name}: "
                  f"{results[name]['big'][-1][0]:.2f} s, {results[name]['small'][-1][0]:.2f} s", file=sys.stderr)
        if args.profile and rep == 0:
            cloud.start()
            try:
                profile_project(cloud, data)
            finally:
                cloud.stop()
    report(cloud, tools, results, args, seed_n)


def report(cloud: Cloud, tools, results, args, seed_n: int) -> None:
    def med(name, workload, i):
        return statistics.median(r[i] for r in results[name][workload])

    ours = {"sub": "ml-analytics upload", "own": "ml-analytics, in process"}
    title = {"azure": "Azure Blob (Azurite 3.35)", "gcs": "GCS (fake-gcs-server 1.54)"}[cloud.name]
    print(f"\n{title} on loopback, median of {args.reps} repetitions, fresh emulator each repetition; "
          f"ratio = tool time / this project's time, like for like: a command against `ml-analytics upload`, "
          f"an in-process call against `ml-analytics, in process` (> 1: this project is faster); CPU figures "
          f"are milliseconds of this machine's CPU per file (small) or per MiB (big)\n")
    print(f"| tool | 1 × {args.big_mib} MiB s | MiB/s | ratio | client CPU ms/MiB | server CPU ms/MiB "
          f"| {args.small_count} × {args.small_kib} KiB s | files/s | ratio | client CPU ms/file | server CPU ms/file |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, _, where, limit in tools:
        our_big = args.big_mib / med(ours[where], "big", 0)
        our_small = args.small_count / med(ours[where], "small", 0)
        n = limit or args.small_count
        big_t, small_t = med(name, "big", 0), med(name, "small", 0)
        big_rate, small_rate = args.big_mib / big_t, n / small_t
        print(f"| {name} | {big_t:.2f} | {big_rate:.0f} | {our_big / big_rate:.2f} | "
              f"{1000 * med(name, 'big', 1) / args.big_mib:.2f} | {1000 * med(name, 'big', 2) / args.big_mib:.2f} | "
              f"{small_t:.2f} | {small_rate:.0f} | {our_small / small_rate:.2f} | "
              f"{1000 * med(name, 'small', 1) / n:.2f} | {1000 * med(name, 'small', 2) / n:.2f} |")
    server_small = min(med(name, "small", 2) / (limit or args.small_count) for name, _, _, limit in tools)
    server_big = min(med(name, "big", 2) / args.big_mib for name, _, _, _ in tools)
    print(f"\nEmulator ceiling for small files: {1 / server_small:.0f} files/s if it had a core to itself "
          f"(its least CPU per file above, {1000 * server_small:.2f} ms); this machine has {os.cpu_count()} cores "
          f"shared by the emulator, the client and anything else running. For the big file: "
          f"{args.big_mib * server_big:.2f} s of emulator CPU at least ({1000 * server_big:.2f} ms/MiB), "
          f"{args.big_mib / (args.big_mib * server_big):.0f} MiB/s on a core of its own.")


def profile_project(cloud: Cloud, data: dict) -> None:
    """cProfile of the CLI itself on each workload (cumulative time, top 15)."""
    for workload, path in (("big", data["big"]), ("small", data["small"])):
        out = cloud.workdir / f"profile-{cloud.name}-{workload}.pstats"
        cmd = cloud.project_cmd(path)
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), *cmd[1:]], env=cloud.env,
                       capture_output=True, check=True)
        import pstats

        print(f"\nProfile of ml-analytics upload, {cloud.name} {workload} (main thread and startup; "
              f"cumulative):", file=sys.stderr)
        pstats.Stats(str(out), stream=sys.stderr).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
