"""docs/reliability.md keeps its promise: every table row names a test that exists (#20).

Each data row of every table must have a ``test`` column holding at least one reference,
```tests/<path>.py::<function>``` or ```tests/<path>.py::<function>[<id>]``` (conformance tests:
```src/ml_analytics/testing/conformance.py::<method>```), or the words ``known limit``. A reference
is good when the file exists, defines the function (``def name(`` at any indentation: conformance
tests are methods) and, with an id, the id's text, or each of its words, appears in that file
(parametrize ids are often built from strings there). No test is run; this only keeps the page
from naming tests that are not there.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"

REFERENCE = re.compile(r"`((?:tests|src)/[^`\s:]+\.py)::(\w+)(?:\[([^`]*)\])?`")
KNOWN_LIMIT = "known limit"
SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")
MAX_KNOWN_LIMITS = 6  # "keep those few": a row without a test is the exception


def _cells(line: str) -> list[str]:
    """The cells of a table line, split on pipes that are not escaped (``\\|``)."""
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [c.strip() for c in re.split(r"(?<!\\)\|", inner)]


def tables(markdown: str):
    """Yield (line number of the header, header cells, [(line number, cells), ...]) for each table,
    outside fenced code blocks."""
    lines = markdown.splitlines()
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("```"):
            fenced = not fenced
            i += 1
            continue
        if fenced or not line.startswith("|"):
            i += 1
            continue
        start = i
        block = []
        while i < len(lines) and lines[i].strip().startswith("|"):
            block.append((i + 1, lines[i]))
            i += 1
        header = _cells(block[0][1])
        body = block[2:] if len(block) > 1 and SEPARATOR.match(block[1][1].strip()) else block[1:]
        yield start + 1, header, [(n, _cells(text)) for n, text in body if not SEPARATOR.match(text.strip())]


def _defines(text: str, name: str) -> bool:
    return re.search(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", text, re.M) is not None


def _id_found(text: str, ident: str) -> bool:
    if ident in text:
        return True
    words = [w for w in re.split(r"\W+", ident) if w]
    return bool(words) and all(w in text for w in words)


def check(markdown: str, root: Path = ROOT) -> tuple[list[str], int, int]:
    """(problems, data rows, known-limit rows) of ``markdown``; each problem names its line."""
    problems: list[str] = []
    files: dict[str, str | None] = {}
    rows = limits = 0

    def source(path: str) -> str | None:
        if path not in files:
            f = root / path
            files[path] = f.read_text(encoding="utf-8", errors="replace") if f.is_file() else None
        return files[path]

    for at, header, body in tables(markdown):
        lowered = [h.lower() for h in header]
        if "test" not in lowered:
            problems.append(f"line {at}: table has no 'test' column (header: {' | '.join(header)})")
            continue
        col = lowered.index("test")
        for n, cells in body:
            rows += 1
            if len(cells) != len(header):
                problems.append(f"line {n}: {len(cells)} cells where the header has {len(header)} (an unescaped |?)")
                continue
            cell = cells[col]
            refs = REFERENCE.findall(cell)
            if not refs:
                if KNOWN_LIMIT in cell.lower():
                    limits += 1
                else:
                    problems.append(f"line {n}: no test named and not a known limit: {cell[:80]!r}")
                continue
            for path, name, ident in REFERENCE.findall(" ".join(cells)):
                text = source(path)
                ref = f"{path}::{name}" + (f"[{ident}]" if ident else "")
                if text is None:
                    problems.append(f"line {n}: {ref}: no such file")
                elif not _defines(text, name):
                    problems.append(f"line {n}: {ref}: {path} defines no {name}()")
                elif ident and not _id_found(text, ident):
                    problems.append(f"line {n}: {ref}: the id {ident!r} is not built from anything in {path}")
    return problems, rows, limits


def test_every_row_of_the_reliability_page_names_a_test_that_exists():
    problems, rows, limits = check(DOC.read_text(encoding="utf-8"))
    assert not problems, f"{DOC.relative_to(ROOT)}: {len(problems)} broken row(s):\n" + "\n".join(problems)
    assert rows >= 100, f"only {rows} table rows: has the page lost its tables?"
    assert limits <= MAX_KNOWN_LIMITS, f"{limits} rows say 'known limit': name the tests that prove them"


ME = "tests/test_reliability_doc.py"

PLANTED = f"""
# A page

| case | test |
|---|---|
| good | `{ME}::test_the_checker_catches_every_kind_of_broken_row` |
| good, with an id built from words in the file | `{ME}::check[planted words]` |
| untestable | known limit |
| nothing named | the proxy says so |
| missing file | `tests/no_such_file.py::test_x` |
| missing function | `{ME}::test_nobody_wrote_this` |
| bad id | `tests/test_keys.py::test_one_join_rule[qqzzqq-xxyyxx]` |
| too | many | cells |

| case | what happens |
|---|---|
| a table without a test column | `{ME}::check` |

```
| inside a code block | not a table |
```
"""


def test_the_checker_catches_every_kind_of_broken_row():
    problems, rows, limits = check(PLANTED)
    text = "\n".join(problems)
    assert rows == 8 and limits == 1, (rows, limits)  # the table without a test column has none
    assert "no test named and not a known limit" in text and "the proxy says so" in text
    assert "tests/no_such_file.py::test_x: no such file" in text
    assert "defines no test_nobody_wrote_this()" in text
    assert "the id 'qqzzqq-xxyyxx' is not built from anything in tests/test_keys.py" in text
    assert "3 cells where the header has 2" in text
    assert "table has no 'test' column" in text
    assert "inside a code block" not in text
    assert len(problems) == 6, text  # the two good rows and the known limit pass
