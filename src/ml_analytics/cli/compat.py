"""``ml-analytics compat install``: the drop-in for a deployment's ``cloud_storage/``."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from ..errors import EXIT_OK
from .common import output_for


@click.group("compat")
def compat_command() -> None:
    """Drop-in for the ml-analytics-service deployment (its jobs keep their code)."""


@compat_command.command("install")
@click.argument("folder", type=click.Path(file_okay=True, dir_okay=True))
@click.option("--force", is_flag=True, help="Replace modules this command did not write (a backup is kept).")
@click.pass_context
def install_command(ctx, folder, force):
    """Write cloud.py (MultiCloud) and the seed's modules into FOLDER, the deployment's cloud_module_path.

    The jobs' `from cloud import MultiCloud` then uploads through this ml-analytics (run out of
    process, in this environment) with FOLDER/../config.ini.
    """
    from ..compat.install import install, ml_analytics_command, version

    output = output_for(ctx)
    command = ml_analytics_command()
    actions = install(folder, force=force, command=command)
    for a in actions:
        extra = f" (original kept in {a.backup})" if a.backup else ""
        output.out(f"{a.what:<9} {a.path}{extra}")
    config = Path(folder).resolve().parent / "config.ini"
    output.out(f"ml-analytics {version()}: the jobs' MultiCloud now runs {shlex.join(command)} upload --json "
               f"--config {config}")
    if not config.is_file():
        output.warn(f"{config} does not exist yet: MultiCloud() will refuse until it does")
    backups = {a.backup.parent for a in actions if a.backup}
    for b in backups:
        output.out(f"to go back: cp -p {b}/*.py {Path(folder).resolve()}/")
    ctx.exit(EXIT_OK)
