"""``ml-analytics check``: the config valid, every configured bucket reachable and writable, Druid too."""

from __future__ import annotations

import click

from ..errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, MLAnalyticsError, one_line
from .common import config_option, load_config, output_for


@click.command()
@config_option
@click.option("--offline", is_flag=True, help="Only validate the config; do not contact the stores.")
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document.")
@click.pass_context
def check_command(ctx, config_path, offline, json_mode):
    """Validate the config and prove each configured bucket is reachable and writable."""
    from .. import schema
    from ..cloud_storage.registry import registry
    from ..config import DRUID_SECTION
    from ..cloud_storage.capabilities import Locatable
    from ..druid.checks import check_druid, spec_mismatches

    output = output_for(ctx, json_mode)
    config = load_config(config_path, output)
    rows = []
    worst = EXIT_OK
    locations = {}  # section -> StoreLocation of each provider built, to compare the Druid specs with
    provider_sections = [s for s in config.sections() if registry.is_provider(s)]
    implied = []
    if not [s for s in provider_sections if not config.is_blank(s)]:  # as MultiCloud: release 6.0's own sections
        implied = registry.implied(config)
        provider_sections = [s for s in provider_sections if s.upper() not in implied] + implied
    if not provider_sections:
        rows.append({"section": "-", "status": "error", "message": f"{config.path}: no storage provider section"})
        worst = EXIT_USAGE
    if provider_sections and all(config.is_blank(s) for s in provider_sections):
        rows.append({"section": provider_sections[0], "status": "error",
                     "message": f"every value is empty, so no storage provider is configured; fill in its keys "
                                f"({', '.join(config.raw_keys(provider_sections[0]))})"})
        worst = EXIT_USAGE
    for section in provider_sections:
        if config.is_blank(section) and section not in implied:
            rows.append({"section": section, "status": "skipped", "message": "not configured (all values empty)"})
            continue
        provider = None
        try:
            provider = registry.get(section).from_config(config, section)
            output.add_secrets(provider.secrets)
            if provider.can(Locatable):
                locations[section] = provider.location()
            message = "config valid (not contacted)" if offline else provider.check()
            rows.append({"section": section, "status": "ok", "message": message})
        except MLAnalyticsError as e:
            worst = max(worst, e.exit_code)
            rows.append({"section": section, "status": "error", "message": str(e)})
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 (library errors during a probe, a library panic included)
            worst = max(worst, EXIT_FAILED)
            rows.append({"section": section, "status": "error", "message": f"{type(e).__name__}: {one_line(e)}"})
        finally:
            if provider is not None:
                provider.close()
    for section, closest in registry.unclaimed(config):
        hint = f"; did you mean [{closest}]?" if closest else ""
        rows.append({"section": section, "status": "warning",
                     "message": f"not a provider, not this project's and not one the ml-analytics jobs use: "
                                f"ignored{hint}"})
    if config.has_section(DRUID_SECTION) and not config.is_blank(DRUID_SECTION):
        try:
            rows.append({"section": DRUID_SECTION, "status": "ok", "message": check_druid(config, offline)})
        except MLAnalyticsError as e:
            worst = max(worst, e.exit_code)
            rows.append({"section": DRUID_SECTION, "status": "error", "message": str(e)})
        else:
            rows += [{"section": DRUID_SECTION, "status": "warning", "message": m}
                     for m in spec_mismatches(config, locations)]
    if json_mode:
        output.json(schema.check(ok=worst == EXIT_OK, config=config.path, sections=rows))
    else:
        output.out(f"config: {config.path}")
        for row in rows:
            mark = {"ok": "ok  ", "skipped": "skip", "warning": "warn", "error": "FAIL"}[row["status"]]
            line = f"{mark}  [{row['section']}] {one_line(row['message'], 2000)}"
            (output.out if row["status"] != "error" else output.err)(line)
    ctx.exit(worst)
