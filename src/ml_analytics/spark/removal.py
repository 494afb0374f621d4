"""Removing a run that never got its manifest (a failed or interrupted ``write_partitions``).

``write_partitions`` removes its own objects when the Spark job fails; this is for runs whose
driver died before it could (``ml-analytics cleanup --run PREFIX/RUN_ID``). A run that holds a
manifest is committed and is not removed unless ``force`` is given.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..errors import UsageError
from ..keys import normalize_prefix
from .manifest import MANIFEST_NAME


def run_objects(provider, run: str) -> list[str]:
    """Keys of every object under the run's folder."""
    folder = normalize_prefix(run)
    return [info.key for info in provider.list(folder) if info.key.startswith(folder)]


def delete_keys(provider, keys: list[str]) -> None:
    if not keys:
        return
    with ThreadPoolExecutor(min(16, len(keys))) as pool:
        list(pool.map(provider.delete, keys))


def remove_run(providers: dict, run: str) -> dict[str, list[str]]:
    """Delete every object under ``run`` in every provider; return what was removed, per provider."""
    removed = {}
    for section, provider in providers.items():
        keys = run_objects(provider, run)
        delete_keys(provider, keys)
        removed[section] = keys
    return removed


def cleanup(run: str, *, config=None, sections=None, force: bool = False, dry_run: bool = False) -> dict[str, list[str]]:
    """Remove an unfinished run ``PREFIX/RUN_ID`` from every configured provider (or ``sections``).

    Returns the removed (or, with ``dry_run``, the removable) keys per provider. Refuses a run
    that holds a manifest (committed) unless ``force``.
    """
    from .shipping import open_multicloud

    folder = normalize_prefix(run)
    if not folder:
        raise UsageError("cleanup: give the run's folder, PREFIX/RUN_ID (refusing to clean a whole bucket)")
    mc = open_multicloud(config, sections)
    try:
        found = {s: run_objects(p, folder) for s, p in mc.providers().items()}
        committed = sorted({k for keys in found.values() for k in keys if k.rsplit("/", 1)[-1] == MANIFEST_NAME})
        if committed and not force:
            raise UsageError(f"cleanup: {committed[0]} exists: the run is committed (pass --force to remove it anyway)")
        if not dry_run:
            for section, keys in found.items():
                delete_keys(mc.provider(section), keys)
        return found
    finally:
        if mc is not config:
            mc.close()
