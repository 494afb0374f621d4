"""``ml-analytics check`` for the [DRUID] section: settings valid, specs parse, Overlord reachable.

A deployment's [DRUID] also keeps native queries under ``*_spec`` keys (``observation_query_spec``:
``queryType``, no ``type``): those are listed as not ingestion specs and skipped, not refused.

:func:`spec_mismatches` compares each ingestion spec's ``inputSource`` with the stores the config
configures. ``push`` rewrites the input source to the objects it uploaded, but the ml-analytics-service
jobs post the specs from config.ini as they are: a spec naming ``azure://telemetry-data-store/…`` in an
ORACLE deployment makes Druid read Azure.
"""

from __future__ import annotations

from urllib.parse import urlsplit

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



# Druid input source type -> the StoreLocation kind it reads
SOURCE_KINDS = {"s3": "s3", "azure": "azure", "azureStorage": "azure", "google": "gcs", "local": "file"}
_SCHEMES = {"s3": "s3", "azure": "azure", "azureStorage": "azureStorage", "google": "gs"}


def spec_reads(spec: dict) -> tuple[str, str, set[str]] | None:
    """(input source type, kind, buckets or folders) an ingestion spec reads; None when it cannot be
    compared with a store (``http``, ``inline``, no input source)."""
    source = (((spec.get("spec") or {}).get("ioConfig") or {}).get("inputSource") or {})
    stype = source.get("type") if isinstance(source, dict) else None
    kind = SOURCE_KINDS.get(stype)
    if kind is None:
        return None
    places: set[str] = set()
    if kind == "file":
        places |= {str(source["baseDir"])} if source.get("baseDir") else set()
        places |= {str(f) for f in source.get("files") or () if isinstance(f, str)}
        return stype, kind, places
    for uri in list(source.get("uris") or ()) + list(source.get("prefixes") or ()):
        if not isinstance(uri, str):
            continue
        parts = urlsplit(uri)
        if stype == "azureStorage":  # azureStorage://ACCOUNT/CONTAINER/key
            places.add(parts.path.lstrip("/").split("/", 1)[0])
        else:
            places.add(parts.netloc)
    for obj in source.get("objects") or ():
        if isinstance(obj, dict) and obj.get("bucket"):
            places.add(str(obj["bucket"]))
    return stype, kind, places


def _served_by(kind: str, places: set[str], loc) -> bool:
    if loc.kind != kind:
        return False
    if kind == "file":
        root = str(loc.root or "").rstrip("/") + "/"
        return all((p.rstrip("/") + "/").startswith(root) for p in places)
    return places <= {loc.bucket}


def _where(stype: str, places: set[str]) -> str:
    if stype == "local":
        return "local " + ", ".join(sorted(places))
    scheme = _SCHEMES[stype]
    return ", ".join(f"{scheme}://{p}/" for p in sorted(places)) or f"{stype} (no bucket named)"


def _store(section: str, loc) -> str:
    if loc.kind == "file":
        return f"[{section}] {loc.root}"
    scheme = {"s3": "s3", "azure": "azure", "gcs": "gs"}.get(loc.kind, loc.kind)
    return f"[{section}] {scheme}://{loc.bucket}/"


def spec_mismatches(config, locations: dict) -> list[str]:
    """One warning per place that ingestion specs of [DRUID] read and no configured store is
    (``locations``: section -> StoreLocation of each configured provider)."""
    if not locations or not config.has_section(DRUID_SECTION):
        return []
    groups: dict[str, list[str]] = {}
    for key in config.raw_keys(DRUID_SECTION):
        if not key.endswith("_spec") or config.get(DRUID_SECTION, key) is None:
            continue
        try:
            spec, _ = load_spec(key, config)
        except Exception:  # noqa: BLE001 (an unreadable spec is check_druid's to report)
            continue
        reads = None if is_query_spec(spec) else spec_reads(spec)
        if reads is None:
            continue
        stype, kind, places = reads
        if not any(_served_by(kind, places, loc) for loc in locations.values()):
            groups.setdefault(_where(stype, places), []).append(key)
    stores = ", ".join(_store(s, loc) for s, loc in locations.items())
    return [f"{len(keys)} ingestion spec(s) read {where}, which is no configured store ({stores}): "
            f"{', '.join(keys)}. push points a spec at the objects it uploaded, but a job that posts the spec "
            f"as it is (the ml-analytics-service jobs do) makes Druid read {where}"
            for where, keys in groups.items()]
