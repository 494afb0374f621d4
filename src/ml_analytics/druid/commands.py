"""CLI commands for the Druid handoff: ``push``, ``ingest`` and ``druid status``."""

from __future__ import annotations

import time

import click

from ..cli import (EXIT_FAILED, EXIT_OK, Output, _load_config, _load_multicloud, _output, _run_with_progress,
                   _summarise, cli, config_option, summary_counts)
from .. import interrupt
from ..errors import MLAnalyticsError, UsageError


def _options(f):
    for decorator in reversed([
        click.option("--spec", "spec_name", required=True, metavar="KEY_OR_FILE",
                     help="[DRUID] key holding the task JSON (e.g. project_injestion_spec) or a JSON file."),
        click.option("--ingest-from", metavar="SECTION", help="Provider Druid reads from (default: [DRUID] "
                                                                "ingest_from, else the first uploaded to)."),
        click.option("--append/--replace", "append", default=None,
                     help="Append to the datasource, or replace it (default: as the spec says)."),
        click.option("--wait/--no-wait", default=True, help="Wait for the task to finish (default: wait)."),
        click.option("--timeout", default=None, metavar="SECONDS",
                     help="Seconds to wait before shutting the task down (> 0, at most a week)."),
        click.option("--input-source", type=click.Choice(["native", "http"]), default="native",
                     help="native: the store's own input source; http: pre-signed URLs."),
        click.option("--spec-out", type=click.Path(dir_okay=False), default=None,
                     help="Where to write the task JSON (default druid-tasks/DATASOURCE.json)."),
        click.option("--no-verify-rows", is_flag=True, help="Skip the SQL row count after SUCCESS."),
        click.option("--json", "json_mode", is_flag=True, help="Print one JSON document."),
        config_option,
    ]):
        f = decorator(f)
    return f


def _timeout(value: str | None) -> float | None:
    from .handoff import seconds

    if value is None:
        return None
    try:
        return seconds(value, "--timeout")
    except ValueError as e:
        raise UsageError(str(e)) from None


def _say_status(output: Output, json_mode: bool):
    def update(st):
        if json_mode:
            return
        if st.status in ("SUCCESS", "FAILED"):  # finished: the runner's WAITING means nothing now
            output.err(f"druid: task {st.task} is {st.status}")
            return
        hint = "  (no free worker? the task stays RUNNING until one takes it)" \
            if st.runner_status in ("PENDING", "WAITING") else ""
        output.err(f"druid: task {st.task} is {st.status}/{st.runner_status}{hint}")
    return update


def _hand_off(ctx, mc, output, provider, keys, local_files, *, spec_name, append, wait, timeout, input_source,
              spec_out, no_verify_rows, json_mode, expected_rows=None):
    from .handoff import DruidSettings, build_task, count_ndjson_rows, hand_off
    from .spec import load_spec

    settings = DruidSettings.from_config(mc.config)
    output.add_secrets({settings.password} if settings.password else set())
    spec, label = load_spec(spec_name, mc.config)
    task = build_task(spec, provider, keys, append=append, azure_input_source=settings.azure_input_source,
                      input_source=input_source, label=label)
    expected = expected_rows if expected_rows is not None else count_ndjson_rows(local_files) if local_files else None
    return hand_off(task, settings, mc.retry, spec_out=spec_out, wait=wait,
                    timeout=timeout, verify_rows=not no_verify_rows, expected_rows=expected,
                    on_update=_say_status(output, json_mode))


def _hand_off_reported(ctx, mc, output, *args, **kw):
    """_hand_off, with a Druid error after the uploads turned into an ERROR outcome (and its exit code),
    so the caller still prints what was uploaded."""
    from .handoff import DruidOutcome

    try:
        return _hand_off(ctx, mc, output, *args, **kw), None
    except MLAnalyticsError as e:
        return DruidOutcome(None, "ERROR", errorMsg=output.clean(str(e))), e.exit_code


def _report(ctx, output: Output, json_mode: bool, doc: dict, outcome, upload_ok: bool = True,
            exit_code: int | None = None) -> None:
    doc["druid"] = outcome.to_dict() if outcome else None
    ok = upload_ok and (outcome is None or outcome.ok)
    doc["ok"] = ok
    if outcome is not None and outcome.rows_error and outcome.status == "SUCCESS":
        output.warn(f"druid: {outcome.rows_error}")
    if json_mode:
        output.json(doc)
    elif outcome is not None:
        d = outcome
        if d.status == "ERROR":
            output.error(d.errorMsg or "druid: failed")
        elif d.status == "NOT_SUBMITTED":
            output.out(f"druid: task JSON for '{d.datasource}' written to {d.spec_path} (input source "
                       f"{d.input_source}); not submitted: no [DRUID] batch_url configured")
        else:
            rows = f", {d.rows} rows" if d.rows is not None else ""
            expected = f" (expected {d.expected_rows})" if d.expected_rows is not None and d.rows is not None \
                and d.rows != d.expected_rows else ""
            line = f"druid: task {d.task} {d.status}{rows}{expected}; spec {d.spec_path}"
            (output.out if outcome.ok else output.err)(line)
            if d.errorMsg:
                output.err(f"druid: {d.errorMsg}")
    ctx.exit(EXIT_OK if ok else (exit_code or EXIT_FAILED))


def _ingest_provider(mc, ingest_from: str | None, uploaded_sections):
    from ..cloud_storage.registry import registry
    from .handoff import DruidSettings

    name = ingest_from or DruidSettings.from_config(mc.config).ingest_from
    if name:
        cls = registry.get(name)
        match = next((s for s in mc.sections if s.upper() == cls.section), None)
        if match is None:
            raise UsageError(f"--ingest-from {name}: not among the providers uploaded to ({', '.join(mc.sections)})")
        return match
    return uploaded_sections[0]


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--prefix", default="", help="Key prefix in the bucket.")
@click.option("--to", "to", multiple=True, metavar="SECTION", help="Only these provider sections (repeatable).")
@_options
@click.pass_context
def push(ctx, paths, prefix, to, spec_name, ingest_from, append, wait, timeout, input_source, spec_out, no_verify_rows,
         json_mode, config_path):
    """Upload, point the Druid spec at the uploaded files, submit, wait and verify."""
    from ..transfer import plan_uploads

    output = _output(ctx, json_mode)
    timeout = _timeout(timeout)
    started = time.monotonic()
    mc = _load_multicloud(config_path, to, output)
    with mc:
        from .handoff import DruidSettings
        from .spec import check_shape, load_spec

        output.add_secrets({DruidSettings.from_config(mc.config).password} - {None})
        check_shape(*load_spec(spec_name, mc.config))  # refuse a bad spec before uploading anything
        planned = plan_uploads(paths, prefix)
        providers = mc.providers()
        section = _ingest_provider(mc, ingest_from, list(providers))
        for path, _key, reason in planned.skipped:
            output.warn(f"skipped {path}: {reason} (not uploaded, not ingested)")
        results = _run_with_progress(mc, planned, json_mode)
        stopped = interrupt.requested()
        upload_ok = all(r.status != "failed" for r in results) and not planned.skipped and not stopped
        doc = {"summary": summary_counts(results), "results": [r.to_dict() for r in results]}
        if not json_mode:
            _summarise(output, results, time.monotonic() - started)
        outcome = exit_code = None
        if upload_ok:
            keys = [r.key for r in results if r.provider == section and r.status == "uploaded"]
            outcome, exit_code = _hand_off_reported(
                ctx, mc, output, providers[section], keys, [p.source for p in planned], spec_name=spec_name,
                append=append, wait=wait, timeout=timeout, input_source=input_source, spec_out=spec_out,
                no_verify_rows=no_verify_rows, json_mode=json_mode)
        elif stopped:
            output.err("druid: not submitted: the run was interrupted")
            doc["interrupted"] = True
            exit_code = interrupt.exit_code()
        else:
            output.err("druid: not submitted because some uploads failed or files were skipped")
        _report(ctx, output, json_mode, doc, outcome, upload_ok, exit_code)


@cli.command()
@click.option("--uri", "uris", multiple=True, help="An object already in storage (repeatable).")
@click.option("--manifest", metavar="URI", help="A write_partitions run's _manifest.json: exactly its objects and rows.")
@_options
@click.pass_context
def ingest(ctx, uris, manifest, spec_name, ingest_from, append, wait, timeout, input_source, spec_out, no_verify_rows,
           json_mode, config_path):
    """Submit a Druid task for objects already in storage."""
    output = _output(ctx, json_mode)
    timeout = _timeout(timeout)
    mc = _load_multicloud(config_path, [ingest_from] if ingest_from else None, output)
    with mc:
        provider = keys = expected = None
        providers = mc.providers()
        if manifest or not uris:
            from ..spark.ingest import manifest_inputs

            provider, keys, expected = manifest_inputs(manifest, mc, uris)
        for section, candidate in providers.items() if provider is None else ():
            found = [candidate.key_for_uri(u) for u in uris]
            if all(found):
                provider, keys = candidate, found
                break
        if provider is None:
            served = lambda u: any(p.key_for_uri(u) for p in providers.values())  # noqa: E731
            stray = next((u for u in uris if not served(u)), uris[0])
            why = "no configured provider serves" if not served(stray) else "no single configured provider holds all of"
            raise UsageError(f"--uri {stray}: {why} it; configured: "
                             + ", ".join(p.uri_prefix() for p in providers.values()))
        outcome = _hand_off(ctx, mc, output, provider, keys, [], spec_name=spec_name, append=append, wait=wait,
                            timeout=timeout, input_source=input_source, spec_out=spec_out,
                            no_verify_rows=no_verify_rows, json_mode=json_mode, expected_rows=expected)
        _report(ctx, output, json_mode, {}, outcome)


@cli.group()
def druid():
    """Talk to Druid's Overlord."""


@druid.command("status")
@click.argument("task_id")
@config_option
@click.option("--json", "json_mode", is_flag=True, help="Print the status document.")
@click.pass_context
def druid_status(ctx, task_id, config_path, json_mode):
    """Show a task's status."""
    from ..retry import RetryPolicy
    from .handoff import DruidSettings
    from .overlord import summarize_task_error

    output = _output(ctx, json_mode)
    config = _load_config(config_path, output)
    client = DruidSettings.from_config(config).client(RetryPolicy.from_config(config))
    if client is not None:
        output.add_secrets(client.secrets)
    if client is None:
        raise UsageError(f"{config.path}: [DRUID] batch_url is not set")
    st = client.status(task_id)
    if json_mode:
        output.json(st.raw)
    else:
        output.out(f"{st.task}: {st.status} (runner {st.runner_status})"
                   + (f", {st.duration_ms} ms" if st.duration_ms and st.duration_ms > 0 else "")
                   + (f": {summarize_task_error(st.error_msg)}" if st.error_msg else ""))
    ctx.exit(EXIT_OK if st.status != "FAILED" else EXIT_FAILED)
