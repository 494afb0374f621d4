"""The Druid hand-off commands: ``push`` (upload, then ingest), ``ingest`` (objects already stored) and
``druid status``. ``push`` runs ``upload``'s flow (:func:`.common.run_batch`), then the hand-off."""

from __future__ import annotations

import click

from ..errors import EXIT_FAILED, EXIT_OK, MLAnalyticsError, UsageError, one_line
from .common import Output, config_option, load_config, load_multicloud, output_for, report_batch, run_batch


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
        click.option("--no-verify-rows", is_flag=True, help="Skip the row checks after SUCCESS."),
        click.option("--json", "json_mode", is_flag=True, help="Print one JSON document."),
        config_option,
    ]):
        f = decorator(f)
    return f


def _timeout(value: str | None) -> float | None:
    from ..druid.handoff import seconds

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


def _hand_off(mc, output, provider, keys, local_files, *, spec_name, append, wait, timeout, input_source,
              spec_out, no_verify_rows, json_mode, expected_rows=None):
    from ..druid.handoff import DruidSettings, build_task, count_ndjson_rows, hand_off
    from ..druid.spec import load_spec

    settings = DruidSettings.from_config(mc.config)
    output.add_secrets(settings.secrets)
    spec, label = load_spec(spec_name, mc.config)
    task = build_task(spec, provider, keys, append=append, azure_input_source=settings.azure_input_source,
                      input_source=input_source, label=label)
    expected = expected_rows if expected_rows is not None else count_ndjson_rows(local_files) if local_files else None
    return hand_off(task, settings, mc.retry, spec_out=spec_out, wait=wait,
                    timeout=timeout, verify_rows=not no_verify_rows, expected_rows=expected,
                    on_update=_say_status(output, json_mode))


def _hand_off_reported(mc, output, *args, **kw):
    """_hand_off, with a Druid error after the uploads turned into an ERROR outcome (and its exit code),
    so the caller still prints what was uploaded."""
    from ..druid.handoff import DruidOutcome

    try:
        return _hand_off(mc, output, *args, **kw), None
    except MLAnalyticsError as e:
        return DruidOutcome(None, "ERROR", errorMsg=output.clean(str(e))), e.exit_code
    except Exception as e:  # a bug: still one line, and the document is still printed
        return DruidOutcome(None, "ERROR", errorMsg=output.clean(f"unexpected {type(e).__name__}: {one_line(e)}")), \
            EXIT_FAILED


def _say_outcome(output: Output, outcome, json_mode: bool) -> None:
    d = outcome
    if d.rows_error and d.status == "SUCCESS":
        output.warn(f"druid: {d.rows_error}")
    if d.status == "INTERRUPTED":
        output.error(d.errorMsg)
        return
    if json_mode:
        return
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
        (output.out if d.ok else output.err)(line)
        if d.errorMsg:
            output.err(f"druid: {d.errorMsg}")


def _ingest_section(mc, ingest_from: str | None, uploaded_sections) -> str:
    from ..cloud_storage.registry import registry
    from ..druid.handoff import DruidSettings

    name = ingest_from or DruidSettings.from_config(mc.config).ingest_from
    if name:
        cls = registry.get(name)
        match = next((s for s in mc.sections if s.upper() == cls.section), None)
        if match is None:
            raise UsageError(f"--ingest-from {name}: not among the providers uploaded to ({', '.join(mc.sections)})")
        return match
    return uploaded_sections[0]


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--prefix", default="", help="Key prefix in the bucket.")
@click.option("--to", "to", multiple=True, metavar="SECTION", help="Only these provider sections (repeatable).")
@_options
@click.pass_context
def push_command(ctx, paths, prefix, to, spec_name, ingest_from, append, wait, timeout, input_source, spec_out,
                 no_verify_rows, json_mode, config_path):
    """Upload, point the Druid spec at the uploaded files, submit, wait and verify."""
    from .. import interrupt, schema
    from ..druid.handoff import DruidSettings
    from ..druid.spec import check_shape, load_spec
    from ..plan import plan_uploads

    output = output_for(ctx, json_mode)
    timeout = _timeout(timeout)
    mc = load_multicloud(config_path, to, output)
    with mc:
        output.add_secrets(DruidSettings.from_config(mc.config).secrets)
        check_shape(*load_spec(spec_name, mc.config))  # refuse a bad spec before uploading anything
        planned = plan_uploads(paths, prefix)
        providers = mc.providers()
        section = _ingest_section(mc, ingest_from, list(providers))
        for path, _key, reason in planned.skipped:
            output.warn(f"skipped {path}: {reason} (not uploaded, not ingested)")
        keys: list[str] = []

        def keep_keys(provider, result):
            if provider == section and result.status == "uploaded":
                keys.append(result.key)

        stream = schema.JsonStream(output.raw) if json_mode else None
        batch = outcome = exit_code = None
        try:
            batch = run_batch(mc, planned, output, json_mode=json_mode, stream=stream, on_result=keep_keys)
            if not json_mode:
                report_batch(output, batch)
            if batch.ok:
                outcome, exit_code = _hand_off_reported(
                    mc, output, providers[section], keys, [p.source for p in planned], spec_name=spec_name,
                    append=append, wait=wait, timeout=timeout, input_source=input_source, spec_out=spec_out,
                    no_verify_rows=no_verify_rows, json_mode=json_mode)
            elif batch.stopped:
                output.err("druid: not submitted: the run was interrupted")
                exit_code = interrupt.exit_code()
            else:
                output.err("druid: not submitted because some uploads failed or files were skipped")
        finally:
            if stream is not None and batch is not None:
                ok = batch.ok and (outcome is None or outcome.ok)
                stream.close({**schema.batch_fields(summary=batch.tally.summary(), ok=ok,
                                                    second_pass=batch.second_pass, interrupted=batch.stopped),
                              "druid": schema.druid(outcome)})
        if outcome is not None:
            _say_outcome(output, outcome, json_mode)
        ok = batch.ok and (outcome is None or outcome.ok)
    ctx.exit(EXIT_OK if ok else (exit_code or _outcome_exit(outcome)))


@click.command()
@click.option("--uri", "uris", multiple=True, help="An object already in storage (repeatable).")
@click.option("--manifest", metavar="URI", help="A write_partitions run's _manifest.json: exactly its objects and rows.")
@_options
@click.pass_context
def ingest_command(ctx, uris, manifest, spec_name, ingest_from, append, wait, timeout, input_source, spec_out,
                   no_verify_rows, json_mode, config_path):
    """Submit a Druid task for objects already in storage."""
    from .. import schema

    output = output_for(ctx, json_mode)
    timeout = _timeout(timeout)
    mc = load_multicloud(config_path, [ingest_from] if ingest_from else None, output)
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
        outcome = _hand_off(mc, output, provider, keys, [], spec_name=spec_name, append=append, wait=wait,
                            timeout=timeout, input_source=input_source, spec_out=spec_out,
                            no_verify_rows=no_verify_rows, json_mode=json_mode, expected_rows=expected)
        if json_mode:
            output.json(schema.ingest(outcome, outcome.ok))
        _say_outcome(output, outcome, json_mode)
    ctx.exit(EXIT_OK if outcome.ok else _outcome_exit(outcome))


def _outcome_exit(outcome) -> int:
    """1 for a failed task, 130 when the wait was interrupted (the task goes on in Druid)."""
    return 130 if outcome is not None and outcome.status == "INTERRUPTED" else EXIT_FAILED


@click.group("druid")
def druid_command():
    """Talk to Druid's Overlord."""


@druid_command.command("status")
@click.argument("task_id")
@config_option
@click.option("--json", "json_mode", is_flag=True, help="Print the status document.")
@click.pass_context
def druid_status(ctx, task_id, config_path, json_mode):
    """Show a task's status."""
    from ..druid.handoff import DruidSettings
    from ..druid.overlord import summarize_task_error
    from ..retry import RetryPolicy

    output = output_for(ctx, json_mode)
    config = load_config(config_path, output)
    client = DruidSettings.from_config(config).client(RetryPolicy.from_config(config))
    if client is None:
        raise UsageError(f"{config.path}: [DRUID] batch_url is not set")
    output.add_secrets(client.secrets)
    st = client.status(task_id)
    if json_mode:
        output.json(st.raw)
    else:
        output.out(f"{st.task}: {st.status} (runner {st.runner_status})"
                   + (f", {st.duration_ms} ms" if st.duration_ms and st.duration_ms > 0 else "")
                   + (f": {summarize_task_error(st.error_msg)}" if st.error_msg else ""))
    ctx.exit(EXIT_OK if st.status != "FAILED" else EXIT_FAILED)
