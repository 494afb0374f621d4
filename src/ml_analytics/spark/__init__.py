"""Spark executors write their partitions straight to every configured store (extra ``[spark]``).

``write_partitions(df, prefix, config=...)`` makes each executor serialize its own partition as
newline-delimited JSON and upload it to every configured provider, then commits the run with a
``_manifest.json``; ``ingest_manifest`` hands exactly the manifest's objects to Druid; ``cleanup``
removes a run that never got its manifest. Importing this package does not import pyspark (the
``cleanup`` command and the Druid handoff work without it).
"""

from __future__ import annotations

_EXPORTS = {
    "write_partitions": "writer", "SparkWriteError": "writer",
    "Manifest": "manifest", "ManifestObject": "manifest", "read_manifest": "manifest",
    "cleanup": "removal", "ingest_manifest": "ingest",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
