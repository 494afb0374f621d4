"""The ``--json`` documents, defined once: every command builds its document here.

Each document is one JSON object with ``"version": 1`` (this schema's version: a field added keeps
the version, a field renamed or removed bumps it). The documents and their fields:

=============  ==================================================================================
upload         ``version``, ``ok``, ``results`` (list of *result*), ``summary``; when they apply:
               ``second_pass``, ``second_pass_recovered``, ``dry_run``, ``interrupted``
push           as upload, plus ``druid`` (*druid*, null when not reached)
ingest         ``version``, ``ok``, ``druid``
check          ``version``, ``ok``, ``config``, ``sections`` (list of {``section``, ``status``: ok |
               skipped | warning | error, ``message``})
providers      ``version``, ``providers`` (list of {``section``, ``class``, ``origin``, ``description``,
               ``extra``, ``capabilities``, ``keys``}), ``broken`` ({label: error})
cleanup        ``version``, ``ok``, ``run``, ``dry_run``, ``removed`` ({section: [keys]})
=============  ==================================================================================

*result*: ``provider``, ``key``, ``uri``, ``bytes``, ``md5``, ``status`` (uploaded | skipped | failed |
planned), ``error``, ``source``. *summary*: ``uploaded``, ``skipped``, ``failed``, ``bytes_uploaded``.
*druid*: ``task``, ``status`` (SUCCESS | FAILED | INCOMPLETE | TIMEOUT | ERROR | INTERRUPTED |
NOT_SUBMITTED | SUBMITTED), ``errorMsg``, ``rows``, ``expected_rows``, ``rows_error``, ``spec_path``,
``datasource``, ``input_source``, and the task's own row counts when Druid reported them
(``ingested``: processed, unparseable, thrownAway, processedWithError).

The documents of big batches are written progressively (:class:`JsonStream`): results first, the
other fields after them; the shape is the same.
"""

from __future__ import annotations

import json
import threading

VERSION = 1
RESULT_FIELDS = ("provider", "key", "uri", "bytes", "md5", "status", "error", "source")
SUMMARY_FIELDS = ("uploaded", "skipped", "failed", "bytes_uploaded")
RESULT_STATUSES = ("uploaded", "skipped", "failed", "planned")
DRUID_FIELDS = ("task", "status", "errorMsg", "rows", "expected_rows", "rows_error", "spec_path", "datasource",
                "input_source")
DRUID_STATUSES = ("SUCCESS", "FAILED", "INCOMPLETE", "TIMEOUT", "ERROR", "INTERRUPTED", "NOT_SUBMITTED",
                  "SUBMITTED")
CHECK_STATUSES = ("ok", "skipped", "warning", "error")

# kind -> (fields every document has, fields it may have)
DOCUMENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "upload": (("version", "ok", "results", "summary"),
               ("second_pass", "second_pass_recovered", "dry_run", "interrupted")),
    "push": (("version", "ok", "results", "summary", "druid"), ("second_pass", "second_pass_recovered",
                                                                "interrupted")),
    "ingest": (("version", "ok", "druid"), ()),
    "check": (("version", "ok", "config", "sections"), ()),
    "providers": (("version", "providers", "broken"), ()),
    "cleanup": (("version", "ok", "run", "dry_run", "removed"), ()),
}


def result(r) -> dict:
    """One transfer result (:class:`ml_analytics.transfer.TransferResult`): the fields of RESULT_FIELDS."""
    return {"provider": r.provider, "key": r.key, "uri": r.uri, "bytes": r.bytes, "md5": r.md5, "status": r.status,
            "error": r.error, "source": r.source}


def batch_fields(*, summary: dict, ok: bool, second_pass: dict | None = None, dry_run: bool = False,
                 interrupted: bool = False) -> dict:
    """The fields of an upload or push document other than ``results`` (and ``druid``)."""
    doc = {"summary": {f: summary[f] for f in SUMMARY_FIELDS}, "ok": bool(ok), **(second_pass or {})}
    if dry_run:
        doc["dry_run"] = True
    if interrupted:
        doc["interrupted"] = True
    doc["version"] = VERSION
    return doc


def druid(outcome) -> dict | None:
    """A Druid outcome (:class:`ml_analytics.druid.handoff.DruidOutcome`), or None."""
    return outcome.to_dict() if outcome is not None else None


def ingest(outcome, ok: bool) -> dict:
    return {"version": VERSION, "ok": bool(ok), "druid": druid(outcome)}


def check(*, ok: bool, config: str, sections: list[dict]) -> dict:
    return {"version": VERSION, "ok": bool(ok), "config": config,
            "sections": [{"section": r["section"], "status": r["status"], "message": r["message"]} for r in sections]}


def providers(rows: list[dict], broken: dict[str, str]) -> dict:
    return {"version": VERSION, "providers": rows, "broken": dict(broken)}


def cleanup(*, run: str, dry_run: bool, removed: dict[str, list[str]]) -> dict:
    return {"version": VERSION, "ok": True, "run": run, "dry_run": bool(dry_run), "removed": removed}


def problems(kind: str, doc: dict) -> list[str]:
    """What is wrong with ``doc`` as a ``kind`` document (empty: it fits the schema)."""
    required, optional = DOCUMENTS[kind]
    found = [f"missing {f!r}" for f in required if f not in doc]
    found += [f"unexpected {f!r}" for f in doc if f not in required and f not in optional]
    if doc.get("version") != VERSION:
        found.append(f"version is {doc.get('version')!r}, expected {VERSION}")
    for r in doc.get("results") or ():
        if tuple(r) != RESULT_FIELDS or r.get("status") not in RESULT_STATUSES:
            found.append(f"result {r!r} does not fit")
    if "summary" in doc and tuple(doc["summary"]) != SUMMARY_FIELDS:
        found.append(f"summary has {sorted(doc['summary'])}")
    d = doc.get("druid")
    if d is not None and (not set(DRUID_FIELDS) <= set(d) or d.get("status") not in DRUID_STATUSES):
        found.append(f"druid {d!r} does not fit")
    for row in doc.get("sections") or ():
        if row.get("status") not in CHECK_STATUSES:
            found.append(f"section row {row!r} does not fit")
    return found


class JsonStream:
    """An upload or push document, written progressively through ``write`` (a redacting echo): results
    are buffered ``BATCH`` at a time, so memory stays bounded and a big batch costs a few hundred writes
    (and redaction passes), not one per file. :meth:`close` writes the remaining fields."""

    BATCH = 512

    def __init__(self, write) -> None:
        self._write = write
        self._pending: list[str] = []
        self._first = True
        self._closed = False
        self._lock = threading.Lock()

    def result(self, r) -> None:
        text = json.dumps(result(r), ensure_ascii=False)
        with self._lock:
            self._pending.append(text)
            if len(self._pending) >= self.BATCH:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            head = '{"results": [\n' if self._first else ",\n"
            self._write(head + ",\n".join(self._pending))
            self._first = False
            self._pending = []

    def close(self, fields: dict) -> None:
        """Write the rest of the document (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._flush()
            if self._first:
                self._write('{"results": [')
        tail = ", ".join(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
        self._write(f"\n], {tail}}}\n")
