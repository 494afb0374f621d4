"""Running ansible-playbook (ansible-core from the test extra) against this machine (``-c local``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "deploy" / "ansible" / "roles"
PLAYBOOK = REPO / "deploy" / "ansible" / "ml-analytics-cloud.yml"
SERVICE_ROLES = Path(__file__).resolve().parent / "sunbird" / "roles"  # the fixture ml-analytics-service role
COMPAT_FIXTURE = REPO / "tests" / "compat" / "deployment" / "ml-analytics-service"
_RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@dataclass
class Played:
    code: int
    out: str
    recap: dict  # host -> {"ok", "changed", "unreachable", "failed"}

    def changed(self, host: str = "localhost") -> int:
        return self.recap[host]["changed"]


def ansible_playbook() -> Path:
    """The ansible-playbook of the ansible-core installed for this interpreter (the test extra)."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    return beside if beside.is_file() else Path(shutil.which("ansible-playbook") or beside)


def run_playbook(playbook: Path, inventory: Path, work: Path, *, roles: list[Path], extra: list[str] = (),
                 timeout: int = 600) -> Played:
    # PYTHONPATH would let the role's pip see a source tree as installed: the role must install for itself.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ML_ANALYTICS_", "ANSIBLE_")) and k not in ("PYTHONPATH", "PYTHONHOME")}
    (work / "ansible-tmp").mkdir(parents=True, exist_ok=True)
    env.update({"ANSIBLE_ROLES_PATH": ":".join(map(str, roles)), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"),
                "ANSIBLE_REMOTE_TEMP": str(work / "ansible-tmp"), "ANSIBLE_HOME": str(work / "ansible-home"),
                "ANSIBLE_CONFIG": str(work / "no-ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"})
    proc = subprocess.run([str(ansible_playbook()), "-i", str(inventory), str(playbook), *extra], cwd=work, env=env,
                          capture_output=True, text=True, timeout=timeout)
    recap = {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
             for m in _RECAP.findall(proc.stdout)}
    return Played(proc.returncode, proc.stdout + proc.stderr, recap)


def inventory(folder: Path, hosts: dict[str, dict]) -> Path:
    """``[ml-analytics-service]`` with local hosts (host vars as given) and an empty secrets.yml beside it,
    as the sunbird-devops playbooks expect."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["[ml-analytics-service]"]
    for host in hosts:
        lines.append(f"{host} ansible_connection=local ansible_python_interpreter={sys.executable}")
    (folder / "hosts").write_text("\n".join(lines) + "\n")
    (folder / "host_vars").mkdir(exist_ok=True)
    import json

    for host, variables in hosts.items():
        (folder / "host_vars" / f"{host}.json").write_text(json.dumps(variables))
    (folder / "secrets.yml").write_text("{}\n")
    return folder / "hosts"


def seed_repository(where: Path) -> Path:
    """A git repository laid out like the ml-analytics-service app (the compat fixture's job), with
    stand-ins for the original cloud_storage modules, as the service role checks it out."""
    shutil.copytree(COMPAT_FIXTURE, where, ignore=shutil.ignore_patterns("config.ini.template", "__pycache__"))
    for name in ("aws", "gcp", "oracle", "ms_azure"):
        (where / "cloud_storage" / f"{name}.py").write_text(
            f"# Test fixture: stands in for the deployment's original {name}.py (own text).\nimport boto3  # noqa\n")
    git = ["git", "-C", str(where), "-c", "user.email=fixture@example.invalid", "-c", "user.name=fixture"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "the app as released"], check=True)
    return where


def build_wheel(out: Path, copies: Path) -> Path:
    """This project's wheel, built from copies (a build writes build/ and *.egg-info beside its sources)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(REPO / "src", copies / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, copies / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(copies)],
                   check=True, capture_output=True, timeout=300, env=env)
    return next(out.glob("ml_analytics_cloud-*.whl"))
