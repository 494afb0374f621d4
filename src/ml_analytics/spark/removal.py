"""A run's folder: its claim marker, and removing a run that never got its manifest.

Every ``write_partitions`` run claims its folder first with ``PREFIX/RUN_ID/_run.json``, written
create-only (the store refuses a second claim atomically), so two runs cannot share a run id and a
folder without the marker is not a run. ``write_partitions`` removes its own objects when the Spark job
fails; ``ml-analytics cleanup --run PREFIX/RUN_ID`` is for runs whose driver died before it could. It
refuses a folder that holds no run (no marker), and a committed run (it holds a manifest) unless
``force``; it removes the run's objects and every unfinished upload under it (open multipart uploads,
uncommitted blocks, temporaries), whatever their age: the run owns its folder.
"""

from __future__ import annotations

import json
import os
import socket
from concurrent.futures import ThreadPoolExecutor

from ..cloud_storage.capabilities import CreateOnly, PrefixCleanup
from ..errors import AlreadyExistsError, UsageError
from ..keys import normalize_prefix
from .manifest import MANIFEST_NAME, now

MARKER_NAME = "_run.json"
MARKER_FORMAT = "ml-analytics-run/1"


def run_objects(provider, run: str) -> list[str]:
    """Keys of every object under the run's folder."""
    folder = normalize_prefix(run)
    return [info.key for info in provider.list(folder) if info.key.startswith(folder)]


def delete_keys(provider, keys: list[str]) -> None:
    if not keys:
        return
    with ThreadPoolExecutor(min(16, len(keys))) as pool:
        list(pool.map(provider.delete, keys))


def abort_uploads(provider, run: str) -> int:
    """Drop every unfinished upload under the run's folder, where the store can tell of them."""
    return provider.abort_uploads_under(normalize_prefix(run)) if provider.can(PrefixCleanup) else 0


def remove_run(providers: dict, run: str) -> dict[str, list[str]]:
    """Delete every object and unfinished upload under ``run`` in every provider; what was removed."""
    removed = {}
    for section, provider in providers.items():
        abort_uploads(provider, run)
        keys = run_objects(provider, run)
        delete_keys(provider, keys)
        removed[section] = keys
    return removed


def claim(providers: dict, run: str, run_id: str) -> None:
    """Write the run's marker to every provider, create-only: a run id another run holds is refused
    atomically, naming where (a store that cannot write create-only gets a listing check instead, which
    a simultaneous run could slip past; said in a warning)."""
    import logging

    body = (json.dumps({"format": MARKER_FORMAT, "run_id": run_id, "run": run, "created": now(),
                        "host": socket.gethostname(), "pid": os.getpid()}) + "\n").encode()
    key = f"{run}/{MARKER_NAME}"
    claimed = []
    try:
        for section, provider in providers.items():
            if provider.can(CreateOnly):
                try:
                    provider.put_bytes_new(body, key)
                except AlreadyExistsError:
                    raise UsageError(f"write_partitions: run id {run_id!r} is taken: {provider.uri(key)} exists, the "
                                     f"folder already holds objects of another run (which claimed it first); "
                                     "choose a new run_id") from None
            else:
                logging.getLogger(__name__).warning(
                    "%s cannot write create-only: the claim of run %s is a listing check, not atomic", section, run)
                if next(iter(provider.list(run + "/")), None) is not None:
                    raise UsageError(f"write_partitions: {provider.uri(run + '/')} already holds objects "
                                     "(another run's); choose a new run_id or remove that run first")
                provider.put_bytes(body, key)
            claimed.append(provider)
    except BaseException:
        for provider in claimed:  # not ours after all: let the run id go again
            provider.delete(key)
        raise
    # a folder that already held objects (an older run without a marker) is never taken over
    for section, provider in providers.items():
        strays = [k for k in run_objects(provider, run) if k != key]
        if strays:
            for p in providers.values():
                p.delete(key)
            raise UsageError(f"write_partitions: {provider.uri(run + '/')} already holds objects (another run's); "
                             "choose a new run_id or remove that run first")


def cleanup(run: str, *, config=None, sections=None, force: bool = False, dry_run: bool = False) -> dict[str, list[str]]:
    """Remove an unfinished run ``PREFIX/RUN_ID`` from every configured provider (or ``sections``).

    Returns the removed (or, with ``dry_run``, the removable) keys per provider. Refuses a folder with no
    run marker (not a run: ordinary uploads), and a run that holds a manifest (committed) unless ``force``.
    """
    from .shipping import open_multicloud

    folder = normalize_prefix(run)
    if not folder:
        raise UsageError("cleanup: give the run's folder, PREFIX/RUN_ID (refusing to clean a whole bucket)")
    mc = open_multicloud(config, sections)
    try:
        found = {s: run_objects(p, folder) for s, p in mc.providers().items()}
        names = {k.rsplit("/", 1)[-1] for keys in found.values() for k in keys if k.count("/") == folder.count("/")}
        if found and any(found.values()) and MARKER_NAME not in names and MANIFEST_NAME not in names:
            where = next(p.uri(folder) for s, p in mc.providers().items() if found[s])
            raise UsageError(f"cleanup: {where} holds no write_partitions run (no {MARKER_NAME} marker): refusing to "
                             "delete what may be ordinary uploads")
        committed = sorted({k for keys in found.values() for k in keys if k == folder + MANIFEST_NAME})
        if committed and not force:
            raise UsageError(f"cleanup: {committed[0]} exists: the run is committed (pass --force to remove it anyway)")
        if not dry_run:
            for section, keys in found.items():
                provider = mc.provider(section)
                abort_uploads(provider, folder)
                delete_keys(provider, keys)
        return found
    finally:
        if mc is not config:
            mc.close()
