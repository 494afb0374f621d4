"""A copy of the fixture deployment (deployment/ml-analytics-service) with one cloud section,
``compat install`` run on it, and its job run the way cron runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent / "deployment" / "ml-analytics-service"


@dataclass
class Job:
    code: int
    out: str
    err: str


def clean_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_ANALYTICS_")}
    env.update(extra or {})
    return env


class Deployment:
    def __init__(self, root: Path, cloud_section: str, common_extra: str = "", druid_port: int = 9):
        self.service = root / "ml-analytics-service"
        shutil.copytree(FIXTURE, self.service)
        template = self.service / "config.ini.template"
        text = (template.read_text().replace("@CLOUD_SECTION@", cloud_section.strip() + "\n")
                .replace("@COMMON_EXTRA@", common_extra).replace("@DRUID_PORT@", str(druid_port))
                .replace("@SERVICE@", str(self.service)))
        template.unlink()
        self.config = self.service / "config.ini"
        self.config.write_text(text)
        self.config.chmod(0o600)
        self.cloud_storage = self.service / "cloud_storage"
        self.cron_dir = root / "cron"  # cron runs the jobs from somewhere else
        self.cron_dir.mkdir()
        self.outputs = {}
        for folder, files in (("projects/output", {"sl_projects.json": '{"project_id": "p1"}\n',
                                                   "sl_tasks.json": '{"task_id": "t1"}\n'}),
                              ("projects/rollup_output", {"projects_rollup.json": '{"program_id": "g1"}\n'}),
                              ("urgent_data_metrics/output", {"micro_improvement.json": '{"mi": 1}\n'})):
            d = self.service / folder
            d.mkdir(parents=True, exist_ok=True)
            for name, body in files.items():
                (d / name).write_text(body)
                self.outputs[name] = body.encode()

    def install(self, *args: str) -> subprocess.CompletedProcess:
        """``ml-analytics compat install`` from this project's own interpreter (its venv)."""
        return subprocess.run([sys.executable, "-m", "ml_analytics", "compat", "install", str(self.cloud_storage),
                               *args], capture_output=True, text=True, env=clean_env(), timeout=120)

    def run_job(self, python: Path, what: str = "projects", env: dict | None = None) -> Job:
        """The job script under the jobs' interpreter, from another working directory."""
        job = self.service / "projects" / "pyspark_project_report.py"
        proc = subprocess.run([str(python), str(job), what], capture_output=True, text=True, cwd=self.cron_dir,
                              env=clean_env(env), timeout=300)
        return Job(proc.returncode, proc.stdout, proc.stderr)
