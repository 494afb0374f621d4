"""The configuration as plain data, so executors build their own providers.

The driver resolves the config once (file, environment overrides, interpolation) and keeps only
what executors need: ``[COMMON]`` (retry policy, memory) and the chosen provider sections, with
relative folder paths made absolute. Executors rebuild a :class:`MultiCloud` from that dict; no
file or environment variable has to exist on them. The dict holds credentials: it travels only
inside task closures (never in job descriptions, RDD names, logs or exceptions) and is never
printed.
"""

from __future__ import annotations

import configparser
import os
import threading

from ..cloud_storage.cloud import MultiCloud
from ..cloud_storage.registry import registry
from ..config import COMMON_SECTION, Config


def open_multicloud(config=None, sections=None) -> MultiCloud:
    """A MultiCloud from a config path, a Config, a MultiCloud or None (the usual lookup)."""
    if isinstance(config, MultiCloud):
        return config
    if isinstance(config, Config):
        return MultiCloud(config=config, sections=sections)
    return MultiCloud(config, sections=sections)


def config_data(mc: MultiCloud) -> dict:
    """What executors need to build the same providers: resolved values of COMMON and providers."""
    sections: dict[str, dict[str, str]] = {}
    if mc.config.has_section(COMMON_SECTION):
        sections[COMMON_SECTION] = mc.config.values(COMMON_SECTION)
    for section in mc.sections:
        values = mc.config.values(section)
        for opt in registry.get(section).options:
            if opt.kind == "path" or opt.name == "root":
                if opt.name in values:
                    values[opt.name] = os.path.abspath(os.path.expanduser(values[opt.name]))
                elif opt.default is not None and opt.default.startswith("."):
                    values[opt.name] = os.path.abspath(opt.default)
        sections[section] = values
    return {"path": mc.config.path, "providers": list(mc.sections), "sections": sections}


def multicloud_from_data(data: dict) -> MultiCloud:
    parser = configparser.ConfigParser(interpolation=None)  # values are already resolved
    parser.optionxform = str.lower
    parser.read_dict(data["sections"])
    config = Config(parser=parser, path=data["path"], env={})
    return MultiCloud(config=config, sections=data["providers"])


_cache: dict[int, MultiCloud] = {}
_cache_lock = threading.Lock()


def executor_multicloud(data: dict) -> MultiCloud:
    """One MultiCloud per executor process and config, reused by every task it runs (clients and
    connections are kept between partitions)."""
    key = hash(repr(sorted((s, sorted(v.items())) for s, v in data["sections"].items())) + repr(data["providers"]))
    with _cache_lock:
        mc = _cache.get(key)
        if mc is None:
            mc = _cache[key] = multicloud_from_data(data)
        return mc
