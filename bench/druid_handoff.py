"""Druid handoff benchmark: seconds from ``ml-analytics push`` starting to the rows being queryable.

Starts a real single-machine Druid (``tests/harness/druid.py``, laid out from Maven Central on
first use) and SeaweedFS on loopback, then times ``push`` of 1 file and of 100 files (the 300 rows of
examples/data/sl_projects.json, split evenly) from LOCAL and from S3. ``push`` returns once Druid's
SQL answers the promised row count, and the count is checked again afterwards. Also prints how long
Druid took to start (all five processes healthy, the broker seeing the historical).

    pip install -e '.[all,test]'
    python bench/druid_handoff.py            # 3 repetitions, median
    python bench/druid_handoff.py --reps 1   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the Druid harness lives beside the tests
DATA = REPO / "examples" / "data" / "sl_projects.json"
SPEC = json.loads((REPO / "examples" / "specs" / "sl-project.json").read_text())


def split(folder: Path, files: int) -> int:
    """``files`` newline-delimited JSON files holding the example rows between them; the row count."""
    rows = DATA.read_text().splitlines(keepends=True)
    folder.mkdir(parents=True)
    for i in range(files):
        (folder / f"part-{i:03d}.json").write_text("".join(rows[i::files]))
    return len(rows)


def config(work: Path, section: str, druid, seaweed, datasource: str) -> Path:
    spec = json.loads(json.dumps(SPEC))
    spec["spec"]["dataSchema"]["dataSource"] = datasource
    if section == "LOCAL":
        store = f"[LOCAL]\nroot = {work / 'store'}\n"
    else:
        bucket = seaweed.create_bucket(f"bench-{uuid.uuid4().hex[:10]}")
        store = (f"[S3]\nendpoint_url = {seaweed.endpoint}\naccess_key = {seaweed.access_key}\n"
                 f"secret_access_key = {seaweed.secret_key}\nregion_name = us-east-1\nbucket_name = {bucket}\n")
    path = work / f"{datasource}.ini"
    path.write_text(store + f"[DRUID]\nbatch_url = {druid.task_url}\nurlQuery = {druid.query_url}\n"
                    f"project_injestion_spec = {json.dumps(spec)}\n")
    path.chmod(0o600)
    return path


def one_push(work: Path, section: str, files: int, druid, seaweed) -> float:
    ds = f"bench-{section.lower()}-{files}-{uuid.uuid4().hex[:6]}"
    folder = work / ds
    rows = split(folder, files)
    cfg = config(work, section, druid, seaweed, ds)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ml_analytics", "push", str(folder), "--prefix", f"{ds}/",
                           "--spec", "project_injestion_spec", "--config", str(cfg), "--json", "--timeout", "300"],
                          cwd=work, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"push failed ({proc.returncode}): {proc.stderr[-2000:]}")
    served = druid.sql(f'SELECT COUNT(*) AS c FROM "{ds}"')[0]["c"]
    if served != rows or json.loads(proc.stdout)["druid"]["rows"] != rows:
        raise SystemExit(f"{ds}: Druid serves {served} rows, expected {rows}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    from harness.druid import DruidCluster, assemble
    from ml_analytics.testing.servers import SeaweedFS

    t = time.perf_counter()
    layout = assemble()
    print(f"layout ready in {time.perf_counter() - t:.1f} s ({layout})", flush=True)
    with tempfile.TemporaryDirectory(prefix="ml-analytics-bench-druid-") as tmp, SeaweedFS() as seaweed:
        work = Path(tmp)
        druid = DruidCluster(layout=layout, s3=(seaweed.endpoint, seaweed.access_key, seaweed.secret_key))
        try:
            druid.start()
            print(f"Druid started in {druid.start_seconds:.1f} s", flush=True)
            one_push(work, "LOCAL", 1, druid, seaweed)  # warm-up: first task, JIT, segment cache
            results = {}
            for section in ("LOCAL", "S3"):
                for files in (1, 100):
                    times = [one_push(work, section, files, druid, seaweed) for _ in range(args.reps)]
                    results[(section, files)] = times
                    print(f"push {section:5} {files:3} file(s) -> rows queryable: median "
                          f"{statistics.median(times):.1f} s (runs: {', '.join(f'{x:.1f}' for x in times)})",
                          flush=True)
        finally:
            druid.cleanup()


if __name__ == "__main__":
    main()
