"""``ml-analytics check`` for the [DRUID] section: settings valid, specs parse, Overlord reachable.

A deployment's [DRUID] also keeps native queries under ``*_spec`` keys (``observation_query_spec``:
``queryType``, no ``type``): those are listed as not ingestion specs and skipped, not refused.
"""

from __future__ import annotations

from ..config import DRUID_SECTION
from ..retry import RetryPolicy
from .handoff import DruidSettings
from .spec import is_query_spec, load_spec, validate_spec


def check_druid(config, offline: bool) -> str:
    settings = DruidSettings.from_config(config)
    keys = [k for k in config.raw_keys(DRUID_SECTION) if k.endswith("_spec")]
    valid, queries = 0, []
    for key in keys:
        if config.get(DRUID_SECTION, key) is None:
            continue
        spec, label = load_spec(key, config)
        if is_query_spec(spec):
            queries.append(key)
            continue
        validate_spec(spec, f"{config.path}: {label}")
        valid += 1
    parts = [f"{valid} ingestion spec(s) valid"]
    if queries:
        parts.append(f"skipped {len(queries)} query spec(s), not ingestion specs: {', '.join(queries)}")
    if not settings.batch_url:
        parts.append("no batch_url: tasks are written, not submitted")
    elif not offline:
        parts.append(settings.client(RetryPolicy.from_config(config)).ping())
    return "; ".join(parts)

