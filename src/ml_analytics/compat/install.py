"""``ml-analytics compat install DIR``: put the jobs' modules into a deployment's ``cloud_module_path``.

Each ml-analytics-service release has its own ``cloud_storage/`` API, and the modules written follow
it exactly (:data:`RELEASES`):

* **5.1**: ``cloud.py`` (``MultiCloud.upload_to_cloud(blob_Path, local_Path, file_Name)`` and
  ``upload_to_NVSK_cloud``), the seed's ``aws.py``, ``ms_azure.py``, ``gcp.py``, ``oracle.py``;
* **5.2**: the same without ``upload_to_NVSK_cloud`` (5.2 never had it);
* **6.0**: ``cloud.py`` only (6.0 deleted the per-cloud modules), whose ``upload_to_cloud(filesList,
  folderPathName, local_Path)`` uploads through ml-core-service's pre-signed URLs ([ML_CORE]) and
  returns 6.0's dict; it also takes the 5.x keywords some 6.0 jobs still pass.

All of them share ``_ml_analytics_runner.py``. The release is ``--release``, else detected from the
folder's modules (:func:`detect_release`): the original ``cloud.py``'s ``MultiCloud`` methods, the
release a previous install recorded, or the original kept in a backup folder. Each file is marked on
its first line as written by this command, for which release, with the ``ml-analytics`` executable of
the environment running it recorded inside. Re-running upgrades its own files in place (and removes
its own modules the release has not, after a switch from 5.x to 6.0); a file it did not write is
replaced only with ``force``, after a copy of it is kept in a backup folder next to it. Files of the
deployment that the release keeps (6.0's ``constants.py``, ``py_cloud_migration.py``, ``__init__.py``)
are left alone. Either every file is written or, on a refusal, none.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import UsageError
from ..source import replace_file

MARKER = "# Written by ml-analytics compat install"
RUNNER = "_ml_analytics_runner.py"
SEED_MODULES = ("aws.py", "ms_azure.py", "gcp.py", "oracle.py")
# The modules each release's jobs import, as written into the deployment's folder.
RELEASES: dict[str, tuple[str, ...]] = {
    "5.1": ("cloud.py", *SEED_MODULES, RUNNER),
    "5.2": ("cloud.py", *SEED_MODULES, RUNNER),
    "6.0": ("cloud.py", RUNNER),
}
DEFAULT_RELEASE = "5.1"  # what this command wrote before it knew releases
MODULES = RELEASES["5.1"]
# Template (in shim/) of each module written, per release; the rest have the module's own name.
TEMPLATES = {("6.0", "cloud.py"): "cloud60.py"}
SOURCES = ("cloud.py", "cloud60.py", *SEED_MODULES, RUNNER)  # every template in shim/
# Lines between these (inclusive) are 5.1's alone: upload_to_NVSK_cloud and its bucket.
ONLY_51 = ("# -- release 5.1 only", "# -- end of release 5.1 only")
COMMAND_LINE = "COMMAND = None  # the ml-analytics command, filled in by ml-analytics compat install"
BACKUP_PREFIX = "ml-analytics-compat-backup-"
_RECORDED = re.compile(r"for release (\d+\.\d+)")


@dataclass
class Action:
    path: Path
    what: str  # "new", "upgraded", "unchanged", "replaced", "removed"
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


def render(name: str, command: list[str], release: str = DEFAULT_RELEASE) -> str:
    """One module's text for ``release``, with the version, the release and the command filled in."""
    source = TEMPLATES.get((release, name), name)
    text = resources.files("ml_analytics.compat.shim").joinpath(source).read_text(encoding="utf-8")
    text = text.replace("@VERSION@", version(), 1).replace("@RELEASE@", release)
    text = _release_blocks(text, keep=release == "5.1")
    if name == RUNNER:
        if COMMAND_LINE not in text:
            raise AssertionError(f"{name}: command placeholder missing")
        text = text.replace(COMMAND_LINE, f"COMMAND = {command!r}  # recorded by ml-analytics compat install", 1)
    return text


def _release_blocks(text: str, *, keep: bool) -> str:
    """Drop the marker lines of 5.1-only blocks, and the blocks themselves unless ``keep``."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith(ONLY_51[1]):
            inside = False
            continue
        if stripped.startswith(ONLY_51[0]):
            inside = True
            continue
        if keep or not inside:
            out.append(line)
    return "".join(out)


def detect_release(folder: str | os.PathLike) -> tuple[str | None, str]:
    """Which release a deployment's ``cloud_storage/`` folder is from, and how that was told.

    ``cloud.py`` written by this command says which release it served; an original ``cloud.py`` is
    read (never run) for its ``MultiCloud`` methods: ``upload_to_cloud(self, filesList, ...)`` is 6.0,
    ``upload_to_NVSK_cloud`` 5.1, ``upload_to_cloud(self, blob_Path, ...)`` without it 5.2. With no
    cloud.py, the newest backup of an earlier install is read. (None, why) when it cannot be told."""
    folder = Path(folder)
    candidates = [folder / "cloud.py"] + sorted(folder.glob(BACKUP_PREFIX + "*/cloud.py"), reverse=True)
    for path in candidates:
        if not path.is_file():
            continue
        found = _release_of(path)
        if found:
            return found
        return None, f"{path} is not a cloud.py of release 5.1, 5.2 or 6.0 (no MultiCloud.upload_to_cloud known)"
    return None, f"no cloud.py in {folder} to tell the release from"


def _release_of(path: Path) -> tuple[str, str] | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if text.startswith(MARKER):
        found = _RECORDED.search(text.splitlines()[0])
        if found and found.group(1) in RELEASES:
            return found.group(1), f"recorded in {path} by an earlier compat install"
        return DEFAULT_RELEASE, f"{path} was written by an earlier compat install, which served release 5.1 only"
    methods: dict[str, list[str]] = {}
    try:
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.name == "MultiCloud":
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        methods[item.name] = [a.arg for a in item.args.args]
    except (SyntaxError, ValueError):  # not Python 3 we can parse: read the definitions as text
        for name, args in re.findall(r"def\s+(upload_to_\w+)\s*\(([^)]*)\)", text):
            methods[name] = [a.split("=")[0].strip() for a in args.split(",")]
    upload = methods.get("upload_to_cloud", [])
    where = f"{path}: MultiCloud.upload_to_cloud({', '.join(upload[1:])})"
    if upload[1:2] == ["filesList"]:
        return "6.0", where
    if upload[1:2] == ["blob_Path"]:
        if "upload_to_NVSK_cloud" in methods:
            return "5.1", where + " and upload_to_NVSK_cloud"
        return "5.2", where + ", no upload_to_NVSK_cloud"
    return None


def written_by_us(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.readline().startswith(MARKER)
    except OSError:
        return False


def choose_release(folder: str | os.PathLike, release: str | None) -> tuple[str, str]:
    """The release to install and why: ``release`` as given, else detected; a folder with no cloud.py
    at all gets 5.1 (what this command always wrote), one with a cloud.py nobody can place is refused."""
    if release is not None:
        if release not in RELEASES:
            raise UsageError(f"--release {release}: expected one of {', '.join(RELEASES)}")
        detected, how = detect_release(folder) if Path(folder).is_dir() else (None, "")
        note = f"; note: {how} says {detected}" if detected and detected != release else ""
        return release, f"as asked (--release {release}){note}"
    detected, how = detect_release(folder) if Path(folder).is_dir() else (None, f"{folder} does not exist yet")
    if detected:
        return detected, f"detected: {how}"
    if (Path(folder) / "cloud.py").exists() or list(Path(folder).glob(BACKUP_PREFIX + "*/cloud.py")):
        raise UsageError(f"cannot tell which ml-analytics-service release this is ({how}); pass --release 5.1, "
                         f"5.2 or 6.0")
    return DEFAULT_RELEASE, f"the default ({how}; pass --release to choose)"


def install(target: str | os.PathLike, *, force: bool = False, command: list[str] | None = None,
            release: str = DEFAULT_RELEASE) -> list[Action]:
    """Write ``release``'s modules into ``target``; return what was done to each file."""
    folder = Path(target)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: not a folder (expected the deployment's cloud_module_path, e.g. "
                         f"ml-analytics-service/cloud_storage)")
    if not folder.parent.is_dir():
        raise UsageError(f"{folder.parent}: no such folder")
    if release not in RELEASES:
        raise UsageError(f"release {release}: expected one of {', '.join(RELEASES)}")
    command = command or ml_analytics_command()
    modules = RELEASES[release]
    texts = {name: render(name, command, release) for name in modules}
    foreign = [folder / n for n in modules if (folder / n).exists() and not written_by_us(folder / n)]
    # Our own modules that this release has not (a 5.x install switched to 6.0): removed, they are ours.
    stale = [folder / n for n in sorted(set().union(*RELEASES.values()) - set(modules))
             if (folder / n).exists() and written_by_us(folder / n)]
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
    for path in stale:
        path.unlink()
        actions.append(Action(path, "removed"))
    for name in modules:
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
        replace_file(path, text, mode=0o644)
    return actions


