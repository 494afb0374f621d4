"""``ml-analytics init``: write a commented config.ini skeleton from the providers' declared keys."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..errors import EXIT_OK, UsageError
from .common import output_for


def skeleton(sections: list[str]) -> str:
    from ..cloud_storage.registry import registry

    lines = ["# ml-analytics config, written by `ml-analytics init`.",
             "# Empty values count as unset; any key can also come from ML_ANALYTICS_<SECTION>_<KEY>.",
             "# Keep this file private: chmod 600.", ""]
    for name in sections:
        cls = registry.get(name)
        lines.append(f"[{cls.section}]")
        if cls.description:
            lines.append(f"# {cls.description}")
        if cls.extra:
            lines.append(f"# needs: pip install 'ml-analytics-cloud[{cls.extra}]'")
        for opt in cls.options:
            notes = ["required" if opt.required else "optional"]
            if opt.secret:
                notes.append("secret: prefer $ML_ANALYTICS_%s_%s" % (cls.section, opt.name.upper()))
            if opt.default is not None:
                notes.append(f"default {opt.default}")
            lines.append(f"# {opt.help} ({', '.join(notes)})")
            lines.append(f"{opt.name} =" if opt.default is None else f"# {opt.name} = {opt.default}")
        lines.append("")
    return "\n".join(lines)


@click.command()
@click.option("--provider", "providers", multiple=True, metavar="NAME",
              help="Provider section to include (repeatable; default LOCAL).")
@click.option("-o", "--output", "out", default="config.ini", show_default=True,
              help="File to write, or - for standard output.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_context
def init_command(ctx, providers, out, force):
    """Write a commented config.ini skeleton for the chosen providers."""
    output = output_for(ctx)
    text = skeleton(list(providers) or ["LOCAL"])
    if out == "-":
        sys.stdout.write(text)
        ctx.exit(EXIT_OK)
    path = Path(out)
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    output.out(f"wrote {path} with sections {', '.join(p.upper() for p in providers) or 'LOCAL'}; "
               f"fill in the keys, then run: ml-analytics check --config {path}")
    ctx.exit(EXIT_OK)
