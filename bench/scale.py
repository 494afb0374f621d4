"""Scale benchmark: memory at any file count, sync by listing, start-up.

Against SeaweedFS on loopback, in one run (ratios only mean something side by side):

* peak RSS of ``ml-analytics upload`` of N small files (default 200,000 x 1 KiB), with and
  without ``--json``, next to ``s5cmd cp`` of the same files (target: <= 150 MiB);
* ``--skip-existing`` on M unchanged files (default 50,000) against ``s5cmd sync``: seconds, peak
  RSS and the store's CPU seconds per run (median of --reps, interleaved; target >= 1.0x s5cmd,
  <= its memory);
* ``ml-analytics --version`` against ``python -c pass`` (median of 30; target within 2x).

    pip install -e '.[all,test,bench]'
    python bench/scale.py                  # full run (~15 minutes on 2 cores)
    python bench/scale.py --quick          # 20,000 / 5,000 files: a smoke test
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from upload import Bench

from ml_analytics.testing.servers import SeaweedFS


def make_files(root: Path, count: int, size: int = 1024) -> Path:
    """``count`` files of ``size`` random bytes, 1000 per folder, reused between runs."""
    d = root / f"files-{count}x{size}"
    marker = d / ".complete"
    if marker.exists():
        return d
    blob = os.urandom(size)
    for i in range(count):
        folder = d / f"d{i // 1000:04d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"r{i:06d}.json").write_bytes(blob[: size - 8] + i.to_bytes(8, "big"))
    marker.write_text("")
    return d


def timed(cmd: list[str], env: dict, server_pid: int) -> tuple[float, float, float]:
    """Seconds, peak RSS (MiB) and the server's CPU seconds for one run of ``cmd``."""
    import psutil

    server = psutil.Process(server_pid)
    cpu0 = sum(server.cpu_times()[:2])
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {out.stderr[-800:]}")
    seconds, rss = out.stdout.split()
    return float(seconds), int(rss) / 1024, sum(server.cpu_times()[:2]) - cpu0


def startup(reps: int = 30) -> tuple[float, float]:
    import shutil

    exe = shutil.which("ml-analytics") or sys.exit("bench: ml-analytics is not installed")

    def median(cmd):
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    return median([sys.executable, "-c", "pass"]), median([exe, "--version"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200_000, help="files for the memory run")
    ap.add_argument("--sync-files", type=int, default=50_000, help="unchanged files for the sync run")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["startup", "memory", "sync"], action="append",
                    help="run only these parts (repeatable)")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "ml-analytics-bench")
    args = ap.parse_args()
    if args.quick:
        args.files, args.sync_files, args.reps = 20_000, 5_000, 1

    parts = set(args.only or ["startup", "memory", "sync"])
    if "startup" in parts:
        base, version = startup()
        print(f"start-up: python -c pass {base * 1000:.0f} ms, ml-analytics --version {version * 1000:.0f} ms "
              f"({version / base:.2f}x; target <= 2x)", flush=True)
    if not parts & {"memory", "sync"}:
        return

    server = SeaweedFS().start()
    try:
        args.data.mkdir(parents=True, exist_ok=True)
        bench = Bench(server, args.data)
        env = bench.env
        pid = server.proc.pid
        if "memory" in parts:
            memory(args, bench, env, pid, server)
        if "sync" in parts:
            sync(args, bench, env, pid, server)
    finally:
        server.cleanup()


def memory(args, bench, env, pid, server) -> None:
    many = make_files(args.data, args.files)
    print(f"\n## memory: {args.files} x 1 KiB files", flush=True)
    print("| tool | seconds | files/s | peak RSS MiB | store CPU s |\n|---|---|---|---|---|")
    for label, extra in (("ml-analytics upload", []), ("ml-analytics upload --json", ["--json"])):
        cmd = [sys.executable, "-m", "ml_analytics", "upload", str(many), "--prefix", bench.prefix(),
               "--config", str(bench.config), *extra]
        s, rss, cpu = timed(cmd, env, pid)
        print(f"| {label} | {s:.1f} | {args.files / s:.0f} | {rss:.0f} | {cpu:.1f} |", flush=True)
    s5 = bench.binary("s5cmd")
    s, rss, cpu = timed([s5, "--endpoint-url", server.endpoint, "--log", "error", "cp", f"{many}/*",
                         f"s3://{bench.bucket}/{bench.prefix()}/"], env, pid)
    print(f"| s5cmd cp | {s:.1f} | {args.files / s:.0f} | {rss:.0f} | {cpu:.1f} |", flush=True)


def sync(args, bench, env, pid, server) -> None:
    s5 = bench.binary("s5cmd")
    unchanged = make_files(args.data, args.sync_files)
    prefix = bench.prefix()
    subprocess.run([sys.executable, "-m", "ml_analytics", "upload", str(unchanged), "--prefix", prefix,
                    "--config", str(bench.config)], env=env, check=True, capture_output=True)
    tools = {
        "ml-analytics upload --skip-existing": [sys.executable, "-m", "ml_analytics", "upload", str(unchanged),
                                                "--prefix", prefix, "--config", str(bench.config),
                                                "--skip-existing"],
        "s5cmd sync": [s5, "--endpoint-url", server.endpoint, "--log", "error", "sync", f"{unchanged}/",
                       f"s3://{bench.bucket}/{prefix}/"],
    }
    runs: dict[str, list] = {k: [] for k in tools}
    for _ in range(args.reps):
        for name, cmd in tools.items():
            runs[name].append(timed(cmd, env, pid))
    print(f"\n## --skip-existing: {args.sync_files} unchanged files, median of {args.reps}", flush=True)
    print("| tool | seconds | ratio (s5cmd time / this) | peak RSS MiB | store CPU s |\n|---|---|---|---|---|")
    ours = statistics.median(r[0] for r in runs["ml-analytics upload --skip-existing"])
    for name, rs in runs.items():
        s = statistics.median(r[0] for r in rs)
        print(f"| {name} | {s:.2f} | {s / ours:.2f} | {statistics.median(r[1] for r in rs):.0f} | "
              f"{statistics.median(r[2] for r in rs):.2f} |")


if __name__ == "__main__":
    main()
