"""``ml-analytics upload``: files and folders to every configured provider (or the ``--to`` ones)."""

from __future__ import annotations

import click

from .common import (batch_exit, config_option, load_multicloud, output_for, report_batch, run_batch)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--prefix", default="", help="Key prefix in the bucket (the seed's bucketPath).")
@click.option("--to", "to", multiple=True, metavar="SECTION", help="Only these provider sections (repeatable).")
@config_option
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document instead of a table.")
@click.option("--dry-run", is_flag=True, help="Show what would be uploaded; upload nothing.")
@click.option("--skip-existing", "--sync", "skip_existing", is_flag=True,
              help="Upload only files whose size or checksum differ from what is in the bucket.")
@click.option("--concurrency", type=click.IntRange(1, 512), default=None, help="Uploads in flight per provider.")
@click.option("--follow-symlinks", is_flag=True, help="Follow symbolic links that lead outside the folder.")
@click.pass_context
def upload_command(ctx, paths, prefix, to, config_path, json_mode, dry_run, skip_existing, concurrency,
                   follow_symlinks):
    """Upload files and folders to every configured provider (or the --to ones)."""
    from .. import schema
    from ..plan import plan_uploads

    output = output_for(ctx, json_mode)
    mc = load_multicloud(config_path, to, output, concurrency)
    with mc:
        planned = plan_uploads(paths, prefix, follow_symlinks=follow_symlinks)
        mc.providers()  # config errors surface here, before any upload
        for path, _key, reason in planned.skipped:
            output.warn(f"skipped {path}: {reason}")
        stream = schema.JsonStream(output.raw) if json_mode else None
        batch = None
        try:
            batch = run_batch(mc, planned, output, json_mode=json_mode, stream=stream, skip_existing=skip_existing,
                              dry_run=dry_run)
        finally:
            if stream is not None and batch is not None:
                stream.close(schema.batch_fields(summary=batch.tally.summary(), ok=batch.ok,
                                                 second_pass=batch.second_pass, dry_run=dry_run,
                                                 interrupted=batch.stopped))
        if not json_mode:
            report_batch(output, batch, dry_run=dry_run)
        elif batch.skipped_files:
            output.err(f"{batch.skipped_files} special file(s) skipped (see the warnings above)")
        if batch.stopped:
            output.error(f"interrupted: {batch.tally.count('uploaded')} upload(s) stored, the rest not "
                         "(in-flight multipart uploads were aborted); re-run with --skip-existing")
    ctx.exit(batch_exit(batch))
