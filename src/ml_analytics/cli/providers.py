"""``ml-analytics providers``: every provider there is, its section, keys and capabilities."""

from __future__ import annotations

import click

from ..errors import EXIT_OK
from .common import output_for


@click.command()
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document.")
@click.pass_context
def providers_command(ctx, json_mode):
    """List the registered storage providers, their config sections and keys."""
    from .. import schema
    from ..cloud_storage.registry import registry

    output = output_for(ctx, json_mode)
    docs = []
    for section in registry.sections():
        cls = registry.get(section)
        docs.append({
            "section": section, "class": f"{cls.__module__}.{cls.__qualname__}", "origin": registry.origin(section),
            "description": cls.description, "extra": cls.extra,
            "capabilities": sorted(c.__name__ for c in cls.capabilities),
            "keys": [{"name": o.name, "required": o.required, "secret": o.secret, "default": o.default,
                      "help": o.help} for o in cls.options],
        })
    broken = registry.broken()
    if json_mode:
        output.json(schema.providers(docs, broken))
    else:
        for d in docs:
            extra = f"  (pip install 'ml-analytics-cloud[{d['extra']}]')" if d["extra"] else ""
            output.out(f"[{d['section']}]  {d['description']}{extra}")
            output.out(f"    class {d['class']}" + (f"  from {d['origin']}" if d["origin"].startswith("plugin") else ""))
            if d["capabilities"]:
                output.out(f"    can: {', '.join(d['capabilities'])}")
            for k in d["keys"]:
                flags = "required" if k["required"] else f"optional, default {k['default']}" if k["default"] else \
                    "optional"
                if k["secret"]:
                    flags += ", secret"
                output.out(f"    {k['name']:<22} {flags:<34} {k['help']}")
        for label, error in broken.items():
            output.err(f"broken provider {label}: {error}")
    ctx.exit(EXIT_OK)
