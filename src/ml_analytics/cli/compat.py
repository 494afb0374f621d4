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
@click.option("--release", type=click.Choice(["5.1", "5.2", "6.0"]),
              help="The deployment's ml-analytics-service release (default: detected from FOLDER's modules).")
@click.option("--force", is_flag=True, help="Replace modules this command did not write (a backup is kept).")
@click.pass_context
def install_command(ctx, folder, release, force):
    """Write the release's cloud_storage modules into FOLDER, the deployment's cloud_module_path.

    5.1 and 5.2: cloud.py (MultiCloud) and the seed's aws.py, ms_azure.py, gcp.py, oracle.py (5.2 without
    upload_to_NVSK_cloud). 6.0: cloud.py, uploading through ml-core-service's pre-signed URLs ([ML_CORE]).
    The jobs' MultiCloud then uploads through this ml-analytics (run out of process, in this environment)
    with FOLDER/../config.ini.
    """
    from ..compat.install import choose_release, install, ml_analytics_command, version

    output = output_for(ctx)
    command = ml_analytics_command()
    release, why = choose_release(folder, release)
    actions = install(folder, force=force, command=command, release=release)
    output.out(f"release {release} ({why})")
    for a in actions:
        extra = f" (original kept in {a.backup})" if a.backup else ""
        output.out(f"{a.what:<9} {a.path}{extra}")
    config = Path(folder).resolve().parent / "config.ini"
    to = " --to ML_CORE" if release == "6.0" else ""
    output.out(f"ml-analytics {version()}: the jobs' MultiCloud now runs {shlex.join(command)} upload --json{to} "
               f"--config {config}")
    if not config.is_file():
        output.warn(f"{config} does not exist yet: MultiCloud() will refuse until it does")
    elif release == "6.0":
        _warn_unconfigured_ml_core(config, output)
    backups = {a.backup.parent for a in actions if a.backup}
    for b in backups:
        output.out(f"to go back: cp -p {b}/*.py {Path(folder).resolve()}/")
    ctx.exit(EXIT_OK)


def _warn_unconfigured_ml_core(config_path: Path, output) -> None:
    """Release 6.0 uploads through [ML_CORE]: say so now if the deployment's config.ini does not configure it."""
    from ..cloud_storage.registry import registry
    from ..config import Config
    from ..errors import MLAnalyticsError

    try:
        config = Config.load(config_path, known_sections=tuple(registry.known_names()))  # env: as the jobs run
        cls = registry.get("ML_CORE")
        if any(s.upper() == "ML_CORE" for s in config.sections()) or cls.configured_without_section(config):
            return
        missing = [f"[{o.fallback[0]}] {o.fallback[1]}" for o in cls.options if o.required and o.fallback
                   and config.get(*o.fallback) is None]
        output.warn(f"{config_path} does not configure the upload through ml-core-service: it lacks "
                    f"{', '.join(missing)} (or an [ML_CORE] section); the jobs' uploads will fail until it has them")
    except MLAnalyticsError as e:
        output.warn(f"{config_path}: {e}")
