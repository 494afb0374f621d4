"""The ``ml-analytics`` command: the group, its command modules, and exit codes.

Exit codes: 0 all good; 1 some transfer or Druid task failed; 2 usage or configuration error; 130 / 143
interrupted by SIGINT / SIGTERM. User mistakes print one line on stderr (``ml-analytics: error: ...``),
never a traceback; set ``ML_ANALYTICS_DEBUG=1`` to see tracebacks of unexpected errors. Everything
printed passes through redaction of the configured credential values.

Each command group lives in its own module of this package and is attached by :data:`COMMANDS`, an
explicit list: a command cannot vanish because an import failed somewhere. Shared helpers are public,
in :mod:`.common`; ``--json`` documents are :mod:`ml_analytics.schema`'s.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from .. import __version__
from ..errors import EXIT_FAILED, EXIT_USAGE, MLAnalyticsError
from .common import Output, setup_logging

# module -> the commands it defines (attached to the group in this order)
COMMANDS: dict[str, tuple[str, ...]] = {
    "upload": ("upload",),
    "druid": ("push", "ingest", "druid"),
    "check": ("check",),
    "providers": ("providers",),
    "init": ("init",),
    "scaffold": ("scaffold",),
    "compat": ("compat",),
    "spark": ("cleanup",),
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="ml-analytics")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Push pre-processed ml-analytics reports to cloud storage and hand them to Druid."""
    ctx.ensure_object(dict)
    ctx.obj.setdefault("output", Output())
    setup_logging(ctx.obj["output"], verbose)


def attach_commands() -> None:
    """Attach every command module's commands (once). A module that fails to import is a bug: it
    raises, it does not silently drop its commands."""
    for module, names in COMMANDS.items():
        mod = importlib.import_module(f"{__name__}.{module}")
        for name in names:
            if name not in cli.commands:
                cli.add_command(getattr(mod, name.replace("-", "_") + "_command"), name)


def print_notes(output: Output) -> None:
    """Which config was used (stderr; stdout stays one --json document). Not after an error,
    which is one line naming the file at fault."""
    for note in output.notes:
        output.err(note)


def main(argv: list[str] | None = None) -> None:
    from .. import interrupt

    output = Output()
    attach_commands()
    try:
        code = cli.main(args=argv, prog_name="ml-analytics", standalone_mode=False, obj={"output": output})
        print_notes(output)
    except click.exceptions.Exit as e:
        code = e.exit_code
        print_notes(output)
    except click.UsageError as e:  # one line, like every other user mistake
        command = e.ctx.command_path if e.ctx else "ml-analytics"
        output.error(f"{e.format_message()} (see: {command} --help)")
        code = EXIT_USAGE
    except click.ClickException as e:
        output.error(e.format_message())
        code = EXIT_USAGE
    except click.exceptions.Abort:  # click's own Ctrl-C (a prompt)
        output.error("interrupted")
        code = 130
    except interrupt.Interrupted as e:
        output.error(str(e))
        code = interrupt.exit_code()
    except MLAnalyticsError as e:
        output.error(str(e))
        code = e.exit_code
    except KeyboardInterrupt:
        output.error("interrupted")
        code = 130
    except BrokenPipeError:  # stdout closed by the reader: nothing more can be said there
        code = EXIT_FAILED
    except Exception as e:  # a bug: one line, redacted; traceback only when asked
        if os.environ.get("ML_ANALYTICS_DEBUG"):
            import traceback

            output.err(traceback.format_exc())
        output.error(f"unexpected {type(e).__name__}: {e} (set ML_ANALYTICS_DEBUG=1 for a traceback)")
        code = EXIT_FAILED
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    if argv is None:
        # This is the process's entry point and it is about to end: without this, the interpreter's
        # last garbage collection walks every result object (20 ms after 5000 files). atexit
        # handlers still run; nothing is collected twice.
        import gc

        gc.freeze()
    sys.exit(code or 0)


__all__ = ["cli", "main", "COMMANDS", "attach_commands"]
