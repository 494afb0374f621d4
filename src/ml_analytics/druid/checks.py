"""``ml-analytics check`` for the [DRUID] section: settings valid, specs parse, Overlord reachable."""

from __future__ import annotations

from ..config import DRUID_SECTION
from ..retry import RetryPolicy
from .handoff import DruidSettings
from .spec import load_spec, validate_spec


def check_druid(config, offline: bool) -> str:
    settings = DruidSettings.from_config(config)
    specs = [k for k in config.raw_keys(DRUID_SECTION) if k.endswith("_spec")]
    for key in specs:
        if config.get(DRUID_SECTION, key) is None:
            continue
        spec, label = load_spec(key, config)
        validate_spec(spec, f"{config.path}: {label}")
    parts = [f"{len(specs)} spec(s) valid"]
    if not settings.batch_url:
        parts.append("no batch_url: tasks are written, not submitted")
    elif not offline:
        parts.append(settings.client(RetryPolicy.from_config(config)).ping())
    return "; ".join(parts)


CHECKS = {DRUID_SECTION: check_druid}
