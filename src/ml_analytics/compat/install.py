"""``ml-analytics compat install DIR``: put the jobs' modules into a deployment's ``cloud_module_path``.

Writes ``cloud.py`` (``MultiCloud``), the seed's ``aws.py``, ``ms_azure.py``, ``gcp.py``,
``oracle.py`` and their shared ``_ml_analytics_runner.py``, each marked on its first line as
written by this command, with the ``ml-analytics`` executable of the environment running it
recorded inside. Re-running upgrades its own files in place; a file it did not write is replaced
only with ``force``, after a copy of it is kept in a backup folder next to it. Either every file is
written or, on a refusal, none.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import UsageError

MARKER = "# Written by ml-analytics compat install"
RUNNER = "_ml_analytics_runner.py"
MODULES = ("cloud.py", "aws.py", "ms_azure.py", "gcp.py", "oracle.py", RUNNER)
COMMAND_LINE = "COMMAND = None  # the ml-analytics command, filled in by ml-analytics compat install"
BACKUP_PREFIX = "ml-analytics-compat-backup-"


@dataclass
class Action:
    path: Path
    what: str  # "new", "upgraded", "unchanged", "replaced"
    backup: Path | None = None


def version() -> str:
    try:
        from importlib.metadata import version as dist_version

        return dist_version("ml-analytics-cloud")
    except Exception:  # running from a source tree that is not installed
        return "0+unknown"


def ml_analytics_command() -> list[str]:
    """How the jobs' modules will run this project: the console script next to this interpreter,
    else this interpreter with ``-m ml_analytics``; absolute paths, symlinks kept (a venv's python)."""
    bindir = Path(os.path.abspath(sys.executable)).parent
    script = bindir / ("ml-analytics.exe" if os.name == "nt" else "ml-analytics")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [os.path.abspath(sys.executable), "-m", "ml_analytics"]


def render(name: str, command: list[str]) -> str:
    """One module's text, with the version and the command filled in."""
    text = resources.files("ml_analytics.compat.shim").joinpath(name).read_text(encoding="utf-8")
    text = text.replace("@VERSION@", version(), 1)
    if name == RUNNER:
        if COMMAND_LINE not in text:
            raise AssertionError(f"{name}: command placeholder missing")
        text = text.replace(COMMAND_LINE, f"COMMAND = {command!r}  # recorded by ml-analytics compat install", 1)
    return text


def written_by_us(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.readline().startswith(MARKER)
    except OSError:
        return False


def install(target: str | os.PathLike, *, force: bool = False, command: list[str] | None = None) -> list[Action]:
    """Write the modules into ``target``; return what was done to each file."""
    folder = Path(target)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: not a folder (expected the deployment's cloud_module_path, e.g. "
                         f"ml-analytics-service/cloud_storage)")
    if not folder.parent.is_dir():
        raise UsageError(f"{folder.parent}: no such folder")
    command = command or ml_analytics_command()
    texts = {name: render(name, command) for name in MODULES}
    foreign = [folder / n for n in MODULES if (folder / n).exists() and not written_by_us(folder / n)]
    if foreign and not force:
        names = ", ".join(str(p) for p in foreign)
        raise UsageError(f"{names}: not written by ml-analytics compat install (the original modules?); "
                         f"pass --force to replace them (a copy is kept in {folder / (BACKUP_PREFIX + '<time>')})")
    folder.mkdir(exist_ok=True)
    actions: list[Action] = []
    backup_dir = None
    if foreign:
        backup_dir = folder / (BACKUP_PREFIX + time.strftime("%Y%m%dT%H%M%S"))
        n = 1
        while backup_dir.exists():
            n += 1
            backup_dir = folder / (BACKUP_PREFIX + time.strftime("%Y%m%dT%H%M%S") + f"-{n}")
        backup_dir.mkdir()
        for path in foreign:
            shutil.copy2(path, backup_dir / path.name)  # before anything is overwritten
    for name in MODULES:
        path = folder / name
        text = texts[name]
        if path in foreign:
            actions.append(Action(path, "replaced", backup_dir / name))
        elif path.exists():
            if path.read_text(encoding="utf-8", errors="replace") == text:
                actions.append(Action(path, "unchanged"))
                continue
            actions.append(Action(path, "upgraded"))
        else:
            actions.append(Action(path, "new"))
        _write_atomically(path, text)
    return actions


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
