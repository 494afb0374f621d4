"""Druid native batch task specs: load, validate, and point at what was just uploaded.

A spec comes from a ``[DRUID]`` config key holding one-line JSON (``project_injestion_spec``,
spelled as the deployment spells it) or from a JSON file. :func:`point_spec` replaces
``spec.ioConfig.inputSource`` with the input source Druid reads the uploaded objects with (built in
:mod:`.sources` from where the provider says its objects live: ``s3``, ``s3`` + ``endpointConfig``,
``google``, ``azure`` / ``azureStorage``, ``local``, ``http``) and sets ``appendToExisting`` when asked.
:func:`validate_spec` refuses, with one clear message, what Druid would refuse or fail on.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UsageError

TASK_TYPES = ("index", "index_parallel")
MAX_DATASOURCE_BYTES = 255  # a file name's limit: deep storage and the task file are named after it


class SpecError(UsageError):
    """A task spec that Druid would refuse, or that would fail once submitted."""


def load_spec(key_or_file: str, config=None) -> tuple[dict, str]:
    """The spec as a dict and a label saying where it came from (file path or ``[DRUID] key``)."""
    path = Path(key_or_file)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise SpecError(f"spec file {key_or_file} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SpecError(f"spec file {key_or_file}: {e.strerror}") from None
        label = str(path)
        return _parse(text, label), label
    if config is None:
        raise SpecError(f"no spec file {key_or_file} and no config to look up [DRUID] {key_or_file}")
    from ..config import DRUID_SECTION

    text = config.get(DRUID_SECTION, key_or_file)
    if text is None:
        raise ConfigError("no such spec: not a file, and the key is missing or empty", path=config.path,
                          section=DRUID_SECTION, key=key_or_file)
    return _parse(text, f"{config.path}: [{DRUID_SECTION}] {key_or_file}"), f"[{DRUID_SECTION}] {key_or_file}"


def _parse(text: str, label: str) -> dict:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"{label}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(doc, dict):
        raise SpecError(f"{label}: a task spec is a JSON object, got {type(doc).__name__}")
    return doc


def _get(doc: dict, *path: str) -> Any:
    cur: Any = doc
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def validate_spec(task: dict, label: str = "spec") -> None:
    """Refuse what Druid would refuse (400) or fail on, naming the field."""
    _refuse_query_spec(task, label)
    ttype = task.get("type")
    if ttype not in TASK_TYPES:
        raise SpecError(f"{label}: type must be one of {', '.join(TASK_TYPES)} (native batch), got {ttype!r}")
    spec = task.get("spec")
    if not isinstance(spec, dict):
        raise SpecError(f"{label}: missing the 'spec' object")
    io = spec.get("ioConfig")
    if not isinstance(io, dict):
        raise SpecError(f"{label}: missing spec.ioConfig")
    if io.get("type") != ttype:
        raise SpecError(f"{label}: spec.ioConfig.type is {io.get('type')!r} but the task type is {ttype!r}")
    tuning = spec.get("tuningConfig")
    if tuning is not None and (not isinstance(tuning, dict) or tuning.get("type") != ttype):
        got = tuning.get("type") if isinstance(tuning, dict) else tuning
        raise SpecError(f"{label}: spec.tuningConfig.type is {got!r} but the task type is {ttype!r}")
    ds = _get(spec, "dataSchema", "dataSource")
    if not isinstance(ds, str) or not ds.strip():
        raise SpecError(f"{label}: spec.dataSchema.dataSource is required")
    if ds.startswith("."):
        raise SpecError(f"{label}: dataSource {ds!r} must not start with '.'")
    if "/" in ds:
        raise SpecError(f"{label}: dataSource {ds!r} must not contain '/'")
    if any(c.isspace() and c != " " for c in ds):
        raise SpecError(f"{label}: dataSource {ds!r} must not contain whitespace other than spaces")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in ds):
        raise SpecError(f"{label}: dataSource {ds!r} must not contain control characters")
    if len(ds.encode("utf-8")) > MAX_DATASOURCE_BYTES:
        raise SpecError(f"{label}: dataSource {ds[:40]!r}… is {len(ds.encode())} bytes; at most "
                        f"{MAX_DATASOURCE_BYTES} (Druid keeps its segments in folders named after it)")
    if not isinstance(io.get("inputFormat"), dict) or not io["inputFormat"].get("type"):
        raise SpecError(f"{label}: spec.ioConfig.inputFormat is required (e.g. {{\"type\": \"json\"}})")
    source = io.get("inputSource")
    if not isinstance(source, dict) or not source.get("type"):
        raise SpecError(f"{label}: spec.ioConfig.inputSource is required")
    partitions = _get(spec, "tuningConfig", "partitionsSpec", "type")
    if io.get("appendToExisting") and partitions not in (None, "dynamic"):
        raise SpecError(f"{label}: appendToExisting needs a 'dynamic' partitionsSpec, not {partitions!r}")
    if io.get("dropExisting"):
        if io.get("appendToExisting"):
            raise SpecError(f"{label}: dropExisting cannot be combined with appendToExisting")
        if not _get(spec, "dataSchema", "granularitySpec", "intervals"):
            raise SpecError(f"{label}: dropExisting needs explicit granularitySpec.intervals")
    kinds = [k for k in ("uris", "prefixes", "objects") if source.get(k)]
    if source["type"] not in ("local", "http", "inline", "druid") and len(kinds) != 1:
        raise SpecError(f"{label}: inputSource {source['type']!r} needs exactly one of uris, prefixes, objects")


def point_spec(task: dict, input_source: dict, *, append: bool | None = None) -> dict:
    """A copy of ``task`` reading ``input_source``; ``append`` sets appendToExisting when not None."""
    task = copy.deepcopy(task)
    io = _get(task, "spec", "ioConfig")
    if not isinstance(io, dict):
        raise SpecError("spec: missing spec.ioConfig, cannot point it at the uploaded files")
    io["inputSource"] = input_source
    if append is not None:
        io["appendToExisting"] = bool(append)
        if append:
            io.pop("dropExisting", None)
    return task


def is_query_spec(doc: dict) -> bool:
    """A native Druid query (``queryType``, no task ``type``), kept beside ingestion specs in [DRUID]."""
    return "queryType" in doc and "type" not in doc


def _refuse_query_spec(task: dict, label: str) -> None:
    if is_query_spec(task):
        raise SpecError(f"{label}: a Druid query spec (queryType {task.get('queryType')!r}), not an ingestion "
                        f"task spec; name an ingestion spec (e.g. project_injestion_spec)")


def check_shape(task: dict, label: str = "spec") -> None:
    """Validate everything but the input source, before anything is uploaded."""
    _refuse_query_spec(task, label)
    if not isinstance(task.get("spec"), dict):
        raise SpecError(f"{label}: missing the 'spec' object")
    if not isinstance(task["spec"].get("ioConfig"), dict):
        raise SpecError(f"{label}: missing spec.ioConfig")
    validate_spec(point_spec(task, {"type": "local", "files": ["/"]}), label)


def datasource(task: dict) -> str:
    return _get(task, "spec", "dataSchema", "dataSource") or "datasource"
