"""The Druid handoff for a ``write_partitions`` run: exactly the manifest's objects, its row count.

The task spec's ``inputSource`` lists the objects named in the manifest, nothing found by listing
the folder, so a stray or truncated object from a failed attempt is never ingested; the expected
row count is the manifest's, checked after the task succeeds (the same SQL count as ``push``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import UsageError
from .manifest import Manifest, read_manifest


def manifest_inputs(manifest, mc, uris: Sequence[str] = (), ingest_from: str | None = None):
    """(provider, keys, expected rows) for the Druid task reading a manifest's objects.

    ``ingest_from`` (or ``[DRUID] ingest_from``) picks the provider; by default the first
    configured provider that the run was written to.
    """
    if not manifest:
        raise UsageError("ingest: give --uri (objects in storage) or --manifest (a write_partitions run)")
    if uris:
        raise UsageError("ingest: give either --uri or --manifest, not both")
    from ..cloud_storage.registry import registry
    from ..druid.handoff import DruidSettings

    found: Manifest = read_manifest(manifest, config=mc)
    if not found.objects:
        raise UsageError(f"{found.uri or manifest}: the manifest lists no objects (the run wrote no rows); "
                         "nothing to ingest")
    wanted = ingest_from or DruidSettings.from_config(mc.config).ingest_from
    written = {s.upper() for s in found.uris}
    for section in mc.sections:
        cls = registry.get(section)
        if (wanted and cls.section == registry.get(wanted).section) or (not wanted and cls.section in written):
            return mc.provider(section), found.keys, found.rows
    raise UsageError(f"{found.uri or manifest}: run {found.run} was written to {', '.join(found.uris) or 'no provider'}"
                     f"; none of them is configured here" + (f" as {wanted}" if wanted else ""))


def ingest_manifest(manifest, *, spec, config=None, ingest_from: str | None = None, append: bool | None = None,
                    wait: bool = True, timeout: float | None = None, spec_out=None, input_source: str = "native",
                    verify_rows: bool = True):
    """Submit a Druid task reading exactly the objects of ``manifest`` (a Manifest or its URI);
    wait, and count the datasource's rows against the manifest's. ``spec`` is a task dict, a
    ``[DRUID]`` key or a JSON file. Returns :class:`~ml_analytics.druid.handoff.DruidOutcome`."""
    from ..druid.handoff import DruidSettings, build_task, hand_off
    from ..druid.spec import check_shape, load_spec
    from .shipping import open_multicloud

    mc = open_multicloud(config)
    try:
        settings = DruidSettings.from_config(mc.config)
        task, label = (spec, "spec") if isinstance(spec, dict) else load_spec(spec, mc.config)
        check_shape(task, label)
        provider, keys, expected = manifest_inputs(manifest, mc, ingest_from=ingest_from)
        task = build_task(task, provider, keys, append=append, azure_input_source=settings.azure_input_source,
                          input_source=input_source, label=label)
        return hand_off(task, settings, mc.retry, spec_out=spec_out, wait=wait, timeout=timeout,
                        verify_rows=verify_rows, expected_rows=expected)
    finally:
        if mc is not config:
            mc.close()
