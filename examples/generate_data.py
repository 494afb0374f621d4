"""Generate the example pre-processed reports in examples/data/ (deterministic).

Shapes follow the ml-analytics jobs' outputs: ``sl_projects.json`` (one row per project task,
newline-delimited JSON, as the projects job writes for the ``sl-project`` datasource) and
``observation_status.json`` (one row per observation submission), plus per-program files the
way the program-wise jobs split them. Run: ``python examples/generate_data.py``.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data"
STATES = ["Karnataka", "Andhra Pradesh", "Punjab", "Odisha", "Uttar Pradesh"]
DISTRICTS = ["Bangalore", "Guntur", "Ludhiana", "Cuttack", "Lucknow"]
PROGRAMS = [("60549338acf1c71f0b2409c3", "School Leadership Program"),
            ("6013eb9d0a0fe3e2d5a5a0b1", "Teacher Development Program")]
SOLUTIONS = ["Improving school infrastructure", "Library corner", "Reading campaign", "Safe drinking water"]
STATUSES = ["started", "inProgress", "submitted"]


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def _oid(rng: random.Random) -> str:
    return "%024x" % rng.getrandbits(96)


def projects(rng: random.Random, n: int) -> list[dict]:
    start = datetime(2026, 6, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(n):
        program_id, program_name = PROGRAMS[i % len(PROGRAMS)]
        s = i % len(STATES)
        created = start + timedelta(hours=rng.randint(0, 24 * 150))
        updated = created + timedelta(hours=rng.randint(1, 24 * 20))
        rows.append({
            "project_title": rng.choice(SOLUTIONS),
            "project_goal": "Improve learning outcomes",
            "project_created_date": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "project_updated_date": updated.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "project_id": _oid(rng), "solution_id": _oid(rng), "program_id": program_id, "program_name": program_name,
            "createdBy": _uid(rng), "state_name": STATES[s], "district_name": DISTRICTS[s],
            "school_code": str(29_000_000_000 + rng.randint(0, 999_999)), "school_name": f"GHPS School {i % 37}",
            "organisation_name": "Sunbird", "status_of_project": rng.choice(STATUSES),
            "task_id": _uid(rng), "tasks": rng.choice(["Form a committee", "Collect funds", "Paint walls", "Buy books"]),
            "task_evidence_status": rng.choice([True, False]), "task_count": rng.randint(1, 8),
            "project_evidence_count": rng.randint(0, 5), "private_program": "false",
        })
    return rows


def observation_status(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        program_id, program_name = PROGRAMS[i % len(PROGRAMS)]
        s = i % len(STATES)
        rows.append({
            "observation_submission_id": _oid(rng), "observation_id": _oid(rng), "solution_id": _oid(rng),
            "solution_name": "School Safety Observation", "program_id": program_id, "program_name": program_name,
            "user_id": _uid(rng), "state_name": STATES[s], "district_name": DISTRICTS[s],
            "status": rng.choice(["started", "inprogress", "completed"]),
            "submission_date": (datetime(2026, 9, 1, tzinfo=timezone.utc) + timedelta(minutes=rng.randint(0, 80000)))
            .isoformat(timespec="seconds").replace("+00:00", "Z"),
            "updatedAt": "2026-11-01T00:00:00Z",
        })
    return rows


def write_ndjson(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")


def main() -> None:
    rng = random.Random(20261124)
    project_rows = projects(rng, 300)
    write_ndjson(OUT / "sl_projects.json", project_rows)
    # observation status rows are another report (another datasource): kept apart from the project files the
    # main example pushes with the sl-project spec, so that push ingests every row it sends
    write_ndjson(OUT.parent / "observations" / "observation_status.json", observation_status(rng, 200))
    for program_id, _ in PROGRAMS:
        write_ndjson(OUT / "programs" / f"sl_projects_{program_id}.json",
                     [r for r in project_rows if r["program_id"] == program_id])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
