"""The jobs' interpreter: a Python 3.8 virtualenv with the deployment's pinned SDKs.

Built once per machine into a cache folder keyed by the interpreter version and the pins (the
slow part of these tests), then reused. ``PY38_VENV`` points at an existing venv instead.
"""

from __future__ import annotations

import glob
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

PINS = ("azure-storage-blob==2.1.0", "boto3==1.12.33", "click==7.1.1")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ml-analytics-tests"


def find_python38() -> str | None:
    """A Python 3.8 interpreter: $PY38, else pyenv's 3.8.x, else python3.8 on PATH."""
    if os.environ.get("PY38"):
        return os.environ["PY38"]
    roots = []
    try:
        roots.append(subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    roots.append(str(Path.home() / ".pyenv"))
    for root in roots:
        found = sorted(glob.glob(os.path.join(root, "versions", "3.8.*", "bin", "python")))
        if found:
            return found[-1]
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = Path(d) / "python3.8"
        if p.is_file() and os.access(p, os.X_OK) and "shims" not in d:
            return str(p)
    return None


def venv_python() -> Path:
    """The cached venv's python, built (a minute or two, from PyPI) if it is not there yet."""
    if os.environ.get("PY38_VENV"):
        return Path(os.environ["PY38_VENV"]) / "bin" / "python"
    base = find_python38()
    if base is None:
        raise RuntimeError("no Python 3.8 found (set PY38 or install it with pyenv)")
    version = subprocess.run([base, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    tag = hashlib.sha256(("\n".join((version,) + PINS)).encode()).hexdigest()[:12]
    venv = CACHE / f"py38-venv-{tag}"
    python = venv / "bin" / "python"
    if (venv / ".complete").is_file():
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f"py38-venv-{tag}.building-{os.getpid()}"
    subprocess.run([base, "-m", "venv", str(tmp)], check=True)
    subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    *PINS], check=True)
    (tmp / ".complete").write_text("\n".join(PINS) + "\n")
    try:
        tmp.rename(venv)  # venvs hold absolute paths: rebuild in place is not possible, so rename once
    except OSError:  # another run finished first
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return python


if __name__ == "__main__":
    print(venv_python())
    sys.exit(0)



def py38_or_skip() -> Path:
    """For the tests that run the jobs: their virtualenv's interpreter, or a skip without Python 3.8."""
    if find_python38() is None:
        pytest.skip("no Python 3.8 interpreter (pyenv install 3.8)")
    return venv_python()
