"""The ``ml-analytics`` command.

Exit codes: 0 all good; 1 some transfer or Druid task failed; 2 usage or configuration error.
User mistakes print one line on stderr (``ml-analytics: error: ...``), never a traceback; set
``ML_ANALYTICS_DEBUG=1`` to see tracebacks of unexpected errors. Everything printed passes
through redaction of the configured credential values.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable

import click

from . import __version__
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, MLAnalyticsError, one_line, redact

log = logging.getLogger("ml_analytics")


class Output:
    """Writes to stdout/stderr with every known secret masked."""

    def __init__(self, json_mode: bool = False):
        self.json_mode = json_mode
        self.secrets: set[str] = set()
        self.notes: list[str] = []  # stderr lines printed after a command that ran (not after an error)

    def add_secrets(self, values) -> None:
        self.secrets |= {v for v in values if v}

    def clean(self, text: str) -> str:
        return redact(str(text), self.secrets)

    def out(self, text: str = "") -> None:
        click.echo(self.clean(text))

    def err(self, text: str) -> None:
        click.echo(self.clean(text), err=True)

    def raw(self, text: str) -> None:
        """Part of a document written progressively (``--json`` of a big batch), redacted."""
        click.echo(self.clean(text), nl=False)

    def json(self, doc: dict) -> None:
        big = len(doc.get("results") or ()) > 200  # thousands of results: compact, it is for programs
        click.echo(self.clean(json.dumps(doc, indent=None if big else 2, ensure_ascii=False)))

    def error(self, text: str) -> None:
        self.err(f"ml-analytics: error: {one_line(text, 2000)}")

    def warn(self, text: str) -> None:
        self.err(f"ml-analytics: warning: {one_line(text, 2000)}")


class _RedactingFilter(logging.Filter):
    def __init__(self, output: Output):
        super().__init__()
        self.output = output

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.output.clean(record.getMessage())
        record.args = ()
        return True


def _setup_logging(output: Output, verbose: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RedactingFilter(output))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _load_config(config_path, output: Output):
    """The config, with its secrets registered for redaction and a warning if others can read it."""
    from .cloud_storage.cloud import path_keys
    from .cloud_storage.registry import registry
    from .config import Config, describe_source

    config = Config.load(config_path, known_sections=tuple(registry.sections()), embedded_default=True)
    registry.prepare(config)
    output.add_secrets(config.secrets(registry.secret_keys(), path_keys()))
    for line in registry.unannounced():
        output.warn(line)
    if config_path is None:  # found by looking (or not found): say which, once the command has run
        output.notes.append(f"ml-analytics: config: {describe_source(config)}")
    for var in config.ignored_env:
        output.warn(f"${var} ignored: {config.path} has no such section (the environment never adds one to a file)")
    warning = config.permission_warning()
    if warning:
        output.warn(warning)
    return config


def _load_multicloud(config_path, sections, output: Output, concurrency: int | None = None):
    from .cloud_storage.cloud import MultiCloud

    return MultiCloud(sections=sections or None, concurrency=concurrency, config=_load_config(config_path, output))


# -- the group ---------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="ml-analytics")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Push pre-processed ml-analytics reports to cloud storage and hand them to Druid."""
    ctx.ensure_object(dict)
    ctx.obj.setdefault("output", Output())
    _setup_logging(ctx.obj["output"], verbose)


def _output(ctx: click.Context, json_mode: bool = False) -> Output:
    output: Output = ctx.obj["output"]
    output.json_mode = json_mode
    return output


config_option = click.option("--config", "config_path", type=click.Path(dir_okay=True),
                             help="config.ini to read (default: $ML_ANALYTICS_CONFIG, ./config.ini, "
                                  "else the embedded LOCAL store).")


# -- upload --------------------------------------------------------------------------------------
class _Progress:
    """A rich progress bar on stderr for a batch, only when stderr is a terminal."""

    def __init__(self, enabled: bool, total_bytes: int, total_files: int):
        self.bar = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn, TransferSpeedColumn)

        self.bar = Progress(TextColumn("[bold]uploading"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                            MofNCompleteColumn(), TimeRemainingColumn(), console=Console(stderr=True),
                            transient=True)
        self.task = self.bar.add_task("upload", total=total_bytes)
        self.files = self.bar.add_task("files", total=total_files, visible=False)

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def on_bytes(self, n: int) -> None:
        if self.bar:
            self.bar.update(self.task, advance=n)

    def on_result(self, _provider, result) -> None:
        if self.bar:
            self.bar.update(self.files, advance=1)
            if result.status != "uploaded":  # skipped or failed: count its bytes as done
                self.bar.update(self.task, advance=result.bytes)


def _run_with_progress(mc, planned, json_mode: bool, skip_existing: bool = False, on_result=None,
                       keep: bool = True):
    """Upload planned files to every provider of ``mc``, with a progress bar for a person at a terminal.

    SIGINT/SIGTERM stop the batch (see :mod:`ml_analytics.interrupt`); what was stored is still
    reported."""
    from . import interrupt

    interrupt.install()
    total = sum(p.size for p in planned) * len(mc.sections)
    try:
        with _Progress(_interactive(json_mode), total, len(planned)) as progress:
            def told(provider, result):
                progress.on_result(provider, result)
                if on_result:
                    on_result(provider, result)

            return mc.run(planned, skip_existing=skip_existing, on_result=told, on_bytes=progress.on_bytes,
                          keep=keep)
    finally:
        interrupt.restore()


def _interactive(json_mode: bool) -> bool:
    """Progress bars only for a person at a terminal: not with --json, not when output is piped."""
    return not json_mode and sys.stdout.isatty() and sys.stderr.isatty()


def summary_counts(results) -> dict:
    from .report import Tally

    return Tally.of(results).summary()


def _summarise(output: Output, results, elapsed: float, dry_run: bool = False) -> None:
    from .report import Tally

    _print_tally(output, Tally.of(results), elapsed, dry_run)


def _print_tally(output: Output, tally, elapsed: float, dry_run: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=None, box=None, pad_edge=False)
    for col in ("provider", "planned" if dry_run else "uploaded", "skipped", "failed", "bytes", "location"):
        table.add_column(col, justify="right" if col in ("uploaded", "planned", "skipped", "failed", "bytes") else "left")
    for name, row in tally.by_provider.items():
        table.add_row(name, str(row["planned" if dry_run else "uploaded"]), str(row["skipped"]), str(row["failed"]),
                      _human_bytes(row["bytes"]), output.clean(row["where"] or ""))
    console = Console(file=sys.stdout, width=max(100, Console().width), soft_wrap=True)
    console.print(table)
    for r in tally.failures:
        output.err(f"failed: {r.provider} {r.key}: {r.error}")
    if tally.failed > len(tally.failures):
        output.err(f"… and {tally.failed - len(tally.failures)} more failures (use --json for all)")
    counts = tally.summary()
    output.out(f"{'planned' if dry_run else 'done'}: {tally.files} files, {len(tally.by_provider)} "
               f"provider(s), {counts['uploaded']} uploaded ({_human_bytes(counts['bytes_uploaded'])}), "
               f"{counts['skipped']} skipped, {counts['failed']} failed in {elapsed:.2f} s")


def _batch_notes(mc) -> dict:
    """Second-pass figures of the last batch, for the summary line and --json."""
    engine = mc.last_engine
    if engine is None or not engine.second_pass:
        return {}
    return {"second_pass": sum(engine.second_pass.values()), "second_pass_recovered": sum(engine.recovered.values())}


@cli.command()
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
def upload(ctx, paths, prefix, to, config_path, json_mode, dry_run, skip_existing, concurrency, follow_symlinks):
    """Upload files and folders to every configured provider (or the --to ones)."""
    from . import interrupt
    from .report import JsonStream, Tally
    from .transfer import TransferResult, plan_uploads

    output = _output(ctx, json_mode)
    started = time.monotonic()
    mc = _load_multicloud(config_path, to, output, concurrency)
    with mc:
        planned = plan_uploads(paths, prefix, follow_symlinks=follow_symlinks)
        providers = mc.providers()  # config errors surface here, before any upload
        for path, _key, reason in planned.skipped:
            output.warn(f"skipped {path}: {reason}")
        tally = Tally()
        stream = JsonStream(output.raw) if json_mode else None

        def record(_provider, result):
            tally.add(result)
            if stream:
                stream.result(result)

        if dry_run:
            for s, prov in providers.items():
                for p in planned:
                    record(s, TransferResult(s, p.key, prov.uri(p.key), p.size, None, "planned", None, str(p.source)))
        else:
            _run_with_progress(mc, planned, json_mode, skip_existing, on_result=record, keep=False)
        notes = _batch_notes(mc)
        stopped = interrupt.requested()
        ok = tally.failed == 0 and not planned.skipped and not stopped
        if stream:
            extra = {"dry_run": True} if dry_run else {}
            if stopped:
                extra["interrupted"] = True
            stream.close(summary=tally.summary(), ok=ok, **notes, **extra)
        else:
            _print_tally(output, tally, time.monotonic() - started, dry_run)
            if notes:
                output.err(f"{notes['second_pass']} upload(s) failed transiently and got a second pass at the end; "
                           f"{notes['second_pass_recovered']} succeeded then")
        if planned.skipped:
            output.err(f"{len(planned.skipped)} special file(s) skipped (see the warnings above)")
        if stopped:
            output.error(f"interrupted: {tally.count('uploaded')} upload(s) stored, the rest not "
                         "(in-flight multipart uploads were aborted); re-run with --skip-existing")
    ctx.exit(interrupt.exit_code() if stopped else EXIT_OK if ok else EXIT_FAILED)


# -- check ---------------------------------------------------------------------------------------
@cli.command()
@config_option
@click.option("--offline", is_flag=True, help="Only validate the config; do not contact the stores.")
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document.")
@click.pass_context
def check(ctx, config_path, offline, json_mode):
    """Validate the config and prove each configured bucket is reachable and writable."""
    from .cloud_storage.registry import registry

    output = _output(ctx, json_mode)
    config = _load_config(config_path, output)
    rows = []
    worst = EXIT_OK
    provider_sections = [s for s in config.sections() if registry.is_provider(s)]
    if not provider_sections:
        rows.append({"section": "-", "status": "error", "message": f"{config.path}: no storage provider section"})
        worst = EXIT_USAGE
    for section in provider_sections:
        if config.is_blank(section):
            rows.append({"section": section, "status": "skipped", "message": "not configured (all values empty)"})
            continue
        provider = None
        try:
            provider = registry.get(section).from_config(config, section)
            output.add_secrets(provider.secrets)
            message = "config valid (not contacted)" if offline else provider.check()
            rows.append({"section": section, "status": "ok", "message": message})
        except MLAnalyticsError as e:
            worst = max(worst, e.exit_code)
            rows.append({"section": section, "status": "error", "message": str(e)})
        except Exception as e:  # library errors during a probe
            worst = max(worst, EXIT_FAILED)
            rows.append({"section": section, "status": "error", "message": f"{type(e).__name__}: {one_line(e)}"})
        finally:
            if provider is not None:
                provider.close()
    for section, checker in _extra_checks().items():
        if config.has_section(section) and not config.is_blank(section):
            try:
                rows.append({"section": section, "status": "ok", "message": checker(config, offline)})
            except MLAnalyticsError as e:
                worst = max(worst, e.exit_code)
                rows.append({"section": section, "status": "error", "message": str(e)})
    if json_mode:
        output.json({"ok": worst == EXIT_OK, "config": config.path, "sections": rows})
    else:
        output.out(f"config: {config.path}")
        for row in rows:
            mark = {"ok": "ok  ", "skipped": "skip", "error": "FAIL"}[row["status"]]
            line = f"{mark}  [{row['section']}] {one_line(row['message'], 2000)}"
            (output.out if row["status"] != "error" else output.err)(line)
    ctx.exit(worst)


def _extra_checks() -> dict[str, Callable]:
    """Checks for non-provider sections (Druid), registered by their modules."""
    try:
        from .druid.checks import CHECKS
    except ImportError:
        return {}
    return CHECKS


# -- providers -------------------------------------------------------------------------------------
@cli.command()
@click.option("--json", "json_mode", is_flag=True, help="Print one JSON document.")
@click.pass_context
def providers(ctx, json_mode):
    """List the registered storage providers, their config sections and keys."""
    from .cloud_storage.registry import registry

    output = _output(ctx, json_mode)
    docs = []
    for section in registry.sections():
        cls = registry.get(section)
        docs.append({
            "section": section, "class": f"{cls.__module__}.{cls.__qualname__}", "origin": registry.origin(section),
            "description": cls.description, "extra": cls.extra,
            "keys": [{"name": o.name, "required": o.required, "secret": o.secret, "default": o.default,
                      "help": o.help} for o in cls.options],
        })
    broken = registry.broken()
    if json_mode:
        output.json({"providers": docs, "broken": broken})
    else:
        for d in docs:
            extra = f"  (pip install 'ml-analytics-cloud[{d['extra']}]')" if d["extra"] else ""
            output.out(f"[{d['section']}]  {d['description']}{extra}")
            output.out(f"    class {d['class']}" + (f"  from {d['origin']}" if d["origin"].startswith("plugin") else ""))
            for k in d["keys"]:
                flags = "required" if k["required"] else f"optional, default {k['default']}" if k["default"] else "optional"
                if k["secret"]:
                    flags += ", secret"
                output.out(f"    {k['name']:<22} {flags:<34} {k['help']}")
        for label, error in broken.items():
            output.err(f"broken provider {label}: {error}")
    ctx.exit(EXIT_OK)


# -- entry point -------------------------------------------------------------------------------------
def _register_optional_commands() -> None:
    """Commands that live in other modules (Druid, init) attach themselves here."""
    for module in ("ml_analytics.druid.commands", "ml_analytics.scaffold", "ml_analytics.compat.commands",
                   "ml_analytics.spark.commands"):
        try:
            __import__(module)
        except ImportError:
            pass


def _print_notes(output: Output) -> None:
    """Which config was used (stderr; stdout stays one --json document). Not after an error,
    which is one line naming the file at fault."""
    for note in output.notes:
        output.err(note)


def main(argv: list[str] | None = None) -> None:
    output = Output()
    _register_optional_commands()
    try:
        code = cli.main(args=argv, prog_name="ml-analytics", standalone_mode=False, obj={"output": output})
        _print_notes(output)
    except click.exceptions.Exit as e:
        code = e.exit_code
        _print_notes(output)
    except click.UsageError as e:  # one line, like every other user mistake
        command = e.ctx.command_path if e.ctx else "ml-analytics"
        output.error(f"{e.format_message()} (see: {command} --help)")
        code = EXIT_USAGE
    except click.ClickException as e:
        output.error(e.format_message())
        code = EXIT_USAGE
    except click.exceptions.Abort:
        output.error("aborted")
        code = EXIT_FAILED
    except MLAnalyticsError as e:
        output.error(str(e))
        code = e.exit_code
    except KeyboardInterrupt:
        output.error("interrupted")
        code = 130
    except Exception as e:  # a bug: one line, redacted; traceback only when asked
        if os.environ.get("ML_ANALYTICS_DEBUG"):
            import traceback

            output.err(traceback.format_exc())
        output.error(f"unexpected {type(e).__name__}: {e} (set ML_ANALYTICS_DEBUG=1 for a traceback)")
        code = EXIT_FAILED
    sys.stdout.flush()
    if argv is None:
        # This is the process's entry point and it is about to end: without this, the interpreter's
        # last garbage collection walks every result object (20 ms after 5000 files). atexit
        # handlers still run; nothing is collected twice.
        import gc

        gc.freeze()
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
