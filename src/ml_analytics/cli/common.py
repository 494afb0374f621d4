"""What every command shares: redacting output, config loading, the upload flow, the summary table.

Command modules import these public helpers and nothing private from each other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field

import click

from ..errors import EXIT_FAILED, EXIT_OK, MLAnalyticsError, one_line, redact

log = logging.getLogger("ml_analytics")
# A file naming the warnings already printed in this job run: the compat modules pass it to every
# upload call of one job, so a warning is printed once per run, not once per call.
JOB_WARNINGS_ENV = "ML_ANALYTICS_JOB_WARNINGS"


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
        self.once(f"ml-analytics: warning: {one_line(text, 2000)}")

    def once(self, line: str) -> None:
        """A warning or notice on stderr, unless this job run printed it already ($ML_ANALYTICS_JOB_WARNINGS)."""
        line = self.clean(line)
        if not said_before(line):
            self.err(line)


def said_before(line: str) -> bool:
    """Whether ``line`` was printed earlier in this job run; records it if not. Without the variable (or
    when its file cannot be used) every line is new. The file holds digests, never the text."""
    path = os.environ.get(JOB_WARNINGS_ENV)
    if not path:
        return False
    digest = hashlib.sha256(line.encode("utf-8", "replace")).hexdigest()[:32]
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError:
        return False
    with os.fdopen(fd, "r+", encoding="ascii", errors="replace") as fh:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)  # two uploads of one job at once: one of them prints
        except (ImportError, OSError):
            pass
        if digest in fh.read().split():
            return True
        fh.write(digest + "\n")
    return False


class RedactingFilter(logging.Filter):
    def __init__(self, output: Output):
        super().__init__()
        self.output = output

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.output.clean(record.getMessage())
        record.args = ()
        return True


def setup_logging(output: Output, verbose: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(output))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def output_for(ctx: click.Context, json_mode: bool = False) -> Output:
    """The command's output, in JSON mode or not."""
    output: Output = ctx.obj["output"]
    output.json_mode = json_mode
    return output


config_option = click.option("--config", "config_path", type=click.Path(dir_okay=True),
                             help="config.ini to read (default: $ML_ANALYTICS_CONFIG, ./config.ini, "
                                  "else the embedded LOCAL store).")


def load_config(config_path, output: Output):
    """The config, with its secrets registered for redaction and a warning if others can read it."""
    from ..cloud_storage.registry import registry
    from ..config import Config, describe_source
    from ..multicloud import config_secrets, config_warnings

    config = Config.load(config_path, known_sections=tuple(registry.known_names()), embedded_default=True)
    output.add_secrets(config_secrets(config))
    registry.prepare(config)
    output.add_secrets(config_secrets(config))  # sections of drop-in providers loaded just now
    config.announced = True
    for line in config_warnings(config):
        if line.startswith("notice: "):
            output.once(f"ml-analytics: {line}")
        else:
            output.warn(line)
    if config_path is None:  # found by looking (or not found): say which, once the command has run
        output.notes.append(f"ml-analytics: config: {describe_source(config)}")
    for var in config.ignored_env:
        output.warn(f"${var} ignored: {config.path} has no such section (the environment never adds one to a file)")
    warning = config.permission_warning()
    if warning:
        output.warn(warning)
    return config


def load_multicloud(config_path, sections, output: Output, concurrency: int | None = None):
    from ..multicloud import MultiCloud

    return MultiCloud(sections=sections or None, concurrency=concurrency, config=load_config(config_path, output))


# -- the upload flow (upload and push) -----------------------------------------------------------------
class Progress:
    """A rich progress bar on stderr for a batch, only when stderr is a terminal."""

    def __init__(self, enabled: bool, total_bytes: int, total_files: int):
        self.bar = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)
        from rich.progress import Progress as Bar

        self.bar = Bar(TextColumn("[bold]uploading"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                       MofNCompleteColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
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


def interactive(json_mode: bool) -> bool:
    """Progress bars only for a person at a terminal: not with --json, not when output is piped."""
    return not json_mode and sys.stdout.isatty() and sys.stderr.isatty()


@dataclass
class Batch:
    """What an upload batch did, counted as results arrived."""

    tally: object
    skipped_files: int = 0
    stopped: bool = False
    second_pass: dict = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.tally.failed == 0 and not self.skipped_files and not self.stopped


def run_batch(mc, planned, output: Output, *, json_mode: bool, stream=None, skip_existing: bool = False,
              dry_run: bool = False, on_result=None) -> Batch:
    """Upload planned files to every provider of ``mc`` (or, ``dry_run``, only list them), counting the
    results, streaming them into ``stream`` (the ``--json`` document) and telling ``on_result``; a
    progress bar for a person at a terminal. SIGINT/SIGTERM stop the batch (see
    :mod:`ml_analytics.interrupt`); what was stored is still reported."""
    from .. import interrupt
    from ..report import Tally
    from ..transfer import TransferResult

    started = time.monotonic()
    tally = Tally()

    def record(provider, result):
        tally.add(result)
        if stream is not None:
            stream.result(result)
        if on_result is not None:
            on_result(provider, result)

    if dry_run:
        for section, provider in mc.providers().items():
            for p in planned:
                record(section, TransferResult(section, p.key, provider.uri(p.key), p.size, None, "planned", None,
                                               str(p.source)))
    else:
        import gc

        interrupt.install()
        total = sum(p.size for p in planned) * len(mc.sections)
        gc_was_enabled = gc.isenabled()
        gc.disable()  # the command owns this process: thousands of short-lived objects, nothing cyclic
        try:
            with Progress(interactive(json_mode), total, len(planned)) as progress:
                def told(provider, result):
                    progress.on_result(provider, result)
                    record(provider, result)

                mc.run(planned, skip_existing=skip_existing, on_result=told, on_bytes=progress.on_bytes, keep=False)
        finally:
            if gc_was_enabled:
                gc.enable()
            interrupt.restore()
    engine = mc.last_engine
    second = {}
    if engine is not None and engine.second_pass:
        second = {"second_pass": sum(engine.second_pass.values()),
                  "second_pass_recovered": sum(engine.recovered.values())}
    return Batch(tally, len(planned.skipped), interrupt.requested(), second, time.monotonic() - started)


def print_tally(output: Output, tally, elapsed: float, dry_run: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=None, box=None, pad_edge=False)
    for col in ("provider", "planned" if dry_run else "uploaded", "skipped", "failed", "bytes", "location"):
        table.add_column(col, justify="right" if col in ("uploaded", "planned", "skipped", "failed", "bytes")
                         else "left")
    for name, row in tally.by_provider.items():
        table.add_row(name, str(row["planned" if dry_run else "uploaded"]), str(row["skipped"]), str(row["failed"]),
                      human_bytes(row["bytes"]), output.clean(row["where"] or ""))
    console = Console(file=sys.stdout, width=max(100, Console().width), soft_wrap=True)
    console.print(table)
    for r in tally.failures:
        output.err(f"failed: {r.provider} {r.key}: {r.error}")
    if tally.failed > len(tally.failures):
        output.err(f"… and {tally.failed - len(tally.failures)} more failures (use --json for all)")
    counts = tally.summary()
    output.out(f"{'planned' if dry_run else 'done'}: {tally.files} files, {len(tally.by_provider)} "
               f"provider(s), {counts['uploaded']} uploaded ({human_bytes(counts['bytes_uploaded'])}), "
               f"{counts['skipped']} skipped, {counts['failed']} failed in {elapsed:.2f} s")


def report_batch(output: Output, batch: Batch, *, dry_run: bool = False) -> None:
    """The human summary of a batch (the table, the second pass, skipped files)."""
    print_tally(output, batch.tally, batch.elapsed, dry_run)
    if batch.second_pass:
        output.err(f"{batch.second_pass['second_pass']} upload(s) failed transiently and got a second pass at the "
                   f"end; {batch.second_pass['second_pass_recovered']} succeeded then")
    if batch.skipped_files:
        output.err(f"{batch.skipped_files} special file(s) skipped (see the warnings above)")


def batch_exit(batch: Batch) -> int:
    from .. import interrupt

    return interrupt.exit_code() if batch.stopped else EXIT_OK if batch.ok else EXIT_FAILED


__all__ = ["Output", "output_for", "config_option", "load_config", "load_multicloud", "run_batch", "Batch",
           "print_tally", "report_batch", "batch_exit", "human_bytes", "setup_logging", "MLAnalyticsError"]
