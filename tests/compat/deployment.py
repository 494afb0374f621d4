"""A copy of a fixture deployment (one per ml-analytics-service release, laid out like that release's
branch: its cloud_storage/ modules, its config.ini's sections, jobs written the way its jobs are),
``compat install`` run on it, and its jobs run the way cron runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "deployment" / "ml-analytics-service"  # release 5.1
FIXTURES = {"5.1": FIXTURE, "5.2": HERE / "deployment-5.2" / "ml-analytics-service",
            "6.0": HERE / "deployment-6.0" / "ml-analytics-service"}
# The files each release's jobs upload, by output folder.
OUTPUTS = {
    "5.1": (("projects/output", {"sl_projects.json": '{"project_id": "p1"}\n', "sl_tasks.json": '{"task_id": "t1"}\n'}),
            ("projects/rollup_output", {"projects_rollup.json": '{"program_id": "g1"}\n'}),
            ("urgent_data_metrics/output", {"micro_improvement.json": '{"mi": 1}\n'})),
    "5.2": (("projects/output", {"sl_projects.json": '{"project_id": "p1"}\n', "sl_tasks.json": '{"task_id": "t1"}\n'}),
            ("urgent_data_metrics/output", {"data.csv": "state,count\nka,3\n"})),
    "6.0": (("observations/output", {"sl_observation_status.json": '{"observation_id": "o1"}\n' * 3}),
            ("urgent_data_metrics/output", {"micro_improvement.csv": "state,projects\nka,3\n",
                                            "micro_improvement.json": '{"keys": ["state"], "tableData": []}\n'}),
            ("projects/prglevel_output", {"ml_projects_distinctCount_prgmlevel.json": '{"program_id": "g1"}\n'}),
            ("projects/dashboard_output", {"KA_submitted_2026-12-01.zip": "PK\x05\x06" + "\x00" * 18})),
}


def oracle_section(seaweed, bucket) -> str:
    """An [ORACLE] section as the deployment's role renders it (blank lines between keys) for SeaweedFS."""
    return (f"[ORACLE]\n\nendpoint_url = {seaweed.endpoint}\n\naccess_key = {seaweed.access_key}\n\n"
            f"secret_access_key = {seaweed.secret_key}\n\nregion_name = us-east-1\n\nbucket_name = {bucket}\n")


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
    def __init__(self, root: Path, cloud_section: str = "", common_extra: str = "", druid_port: int = 9, *,
                 release: str = "5.1", values: dict | None = None):
        self.release = release
        self.service = root / "ml-analytics-service"
        shutil.copytree(FIXTURES[release], self.service)
        template = self.service / "config.ini.template"
        text = (template.read_text().replace("@CLOUD_SECTION@", cloud_section.strip() + "\n")
                .replace("@COMMON_EXTRA@", common_extra).replace("@DRUID_PORT@", str(druid_port))
                .replace("@SERVICE@", str(self.service)))
        for name, value in (values or {}).items():
            text = text.replace(f"@{name}@", str(value))
        template.unlink()
        self.config = self.service / "config.ini"
        self.config.write_text(text)
        self.config.chmod(0o600)
        self.cloud_storage = self.service / "cloud_storage"
        self.cron_dir = root / "cron"  # cron runs the jobs from somewhere else
        self.cron_dir.mkdir()
        self.outputs = {}
        for folder, files in OUTPUTS[release]:
            d = self.service / folder
            d.mkdir(parents=True, exist_ok=True)
            for name, body in files.items():
                (d / name).write_text(body)
                self.outputs[name] = body.encode()

    def install(self, *args: str) -> subprocess.CompletedProcess:
        """``ml-analytics compat install`` from this project's own interpreter (its venv)."""
        return subprocess.run([sys.executable, "-m", "ml_analytics", "compat", "install", str(self.cloud_storage),
                               *args], capture_output=True, text=True, env=clean_env(), timeout=120)

    def run_job(self, python: Path, what: str = "projects", env: dict | None = None,
                script: str = "projects/pyspark_project_report.py") -> Job:
        """A job script under the jobs' interpreter, from another working directory."""
        job = self.service / script
        proc = subprocess.run([str(python), str(job), what], capture_output=True, text=True, cwd=self.cron_dir,
                              env=clean_env(env), timeout=300)
        return Job(proc.returncode, proc.stdout, proc.stderr)
