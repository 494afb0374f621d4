"""``ml-analytics cleanup --run PREFIX/RUN_ID``: remove a write_partitions run that has no manifest."""

from __future__ import annotations

import click

from ..errors import EXIT_OK
from .common import config_option, load_multicloud, output_for


@click.command()
@click.option("--run", "run", required=True, metavar="PREFIX/RUN_ID", help="The run's folder in the bucket.")
@click.option("--to", "to", multiple=True, metavar="SECTION", help="Only these provider sections (repeatable).")
@click.option("--force", is_flag=True, help="Remove the run even if it holds a manifest (is committed).")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document.")
@config_option
@click.pass_context
def cleanup_command(ctx, run, to, force, dry_run, json_mode, config_path):
    """Remove the objects of an unfinished write_partitions run from every provider."""
    from .. import schema
    from ..spark.removal import cleanup as remove

    output = output_for(ctx, json_mode)
    mc = load_multicloud(config_path, to, output)
    with mc:
        found = remove(run, config=mc, force=force, dry_run=dry_run)
        if json_mode:
            output.json(schema.cleanup(run=run, dry_run=dry_run, removed=found))
        else:
            verb = "would remove" if dry_run else "removed"
            for section, keys in found.items():
                output.out(f"{section}: {verb} {len(keys)} object(s) under {run}")
    ctx.exit(EXIT_OK)
