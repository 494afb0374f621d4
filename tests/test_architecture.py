"""The import graph, read from the source (ast): layers point one way, no circles, no private names.

docs/architecture.md draws the same picture. Every import counts, also those inside functions (an
import made late still couples the two modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ml_analytics"

# Bottom to top. A module may import modules of its own layer and of the layers below it.
LAYERS = {
    "core": ("ml_analytics", "ml_analytics.errors", "ml_analytics.keys", "ml_analytics.config", "ml_analytics.retry",
             "ml_analytics.httpclient", "ml_analytics.source", "ml_analytics.checksums", "ml_analytics.interrupt",
             "ml_analytics.schema"),
    "storage": ("ml_analytics.cloud_storage",),
    "engine": ("ml_analytics.plan", "ml_analytics.transfer", "ml_analytics.sync", "ml_analytics.report",
               "ml_analytics.multicloud", "ml_analytics.cloud_storage.cloud"),
    "top": ("ml_analytics.druid", "ml_analytics.spark", "ml_analytics.compat", "ml_analytics.testing",
            "ml_analytics.cli", "ml_analytics.entry", "ml_analytics.__main__"),
}
RANK = {name: i for i, name in enumerate(LAYERS)}
# Within the top layer: who may use whom (spark hands manifests to druid, never the other way round;
# nothing but the CLI and the entry points reaches the CLI).
TOP_MAY_IMPORT = {
    "ml_analytics.druid": set(),
    "ml_analytics.spark": {"ml_analytics.druid"},
    "ml_analytics.compat": set(),
    "ml_analytics.testing": set(),
    "ml_analytics.cli": {"ml_analytics.druid", "ml_analytics.spark", "ml_analytics.compat"},
    "ml_analytics.entry": {"ml_analytics.cli"},
    "ml_analytics.__main__": {"ml_analytics.cli"},
}
# The one upward edge, and why: the seed's `from ml_analytics.cloud_storage import MultiCloud` (and the
# seed's module name cloud_storage/cloud.py) must keep working; the package imports it on first use.
ALLOWED_UPWARD = {("ml_analytics.cloud_storage", "ml_analytics.cloud_storage.cloud")}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in SRC.rglob("*.py") if "shim" not in p.relative_to(SRC).parts}
    return found


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, int, list[str]]]:
    """(imported module, line, names imported from it) for every import of an ml_analytics module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ml_analytics":
                    out.append((alias.name, node.lineno, []))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ml_analytics":
                continue
            names = [a.name for a in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            if submodules:
                out += [(m, node.lineno, []) for m in submodules]
                names = [n for n in names if f"{target}.{n}" not in known]
                if not names:
                    continue
            out.append((target, node.lineno, names))
    return out


def owner(module: str, groups) -> str | None:
    """The longest group prefix ``module`` belongs to."""
    best = None
    for group in groups:
        if module == group or module.startswith(group + "."):
            if best is None or len(group) > len(best):
                best = group
    return best


def layer_of(module: str) -> str:
    best_layer, best_len = None, -1
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best_layer, best_len = layer, len(prefix)
            if prefix == "ml_analytics" and module == "ml_analytics" and best_len < len(prefix):
                best_layer, best_len = layer, len(prefix)
    if module != "ml_analytics" and best_layer == "core" and module not in LAYERS["core"]:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to docs/architecture.md)")
    return best_layer


def graph():
    mods = modules()
    known = set(mods)
    edges = {}
    for name, path in mods.items():
        edges[name] = imports(name, path, known)
    return mods, edges


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_imports_point_down_the_layers():
    _, edges = graph()
    wrong = []
    for source, targets in edges.items():
        for target, line, _names in targets:
            if target == source or (source, target) in ALLOWED_UPWARD:
                continue
            s_layer, t_layer = layer_of(source), layer_of(target)
            if RANK[t_layer] > RANK[s_layer]:
                wrong.append(f"{source}:{line} imports {target} ({s_layer} -> {t_layer})")
            elif s_layer == t_layer == "top":
                s_top, t_top = owner(source, TOP_MAY_IMPORT), owner(target, TOP_MAY_IMPORT)
                if s_top != t_top and t_top not in TOP_MAY_IMPORT[s_top]:
                    wrong.append(f"{source}:{line} imports {target} ({s_top} may not use {t_top})")
    assert not wrong, "\n".join(wrong)


def test_storage_never_reaches_druid_spark_or_the_cli():
    _, edges = graph()
    reached = set()
    todo = [m for m in edges if m.startswith("ml_analytics.cloud_storage") and m != "ml_analytics.cloud_storage.cloud"]
    while todo:
        m = todo.pop()
        for target, _line, _names in edges.get(m, ()):
            if (m, target) in ALLOWED_UPWARD or target in reached:
                continue
            reached.add(target)
            todo.append(target)
    bad = sorted(t for t in reached if t.startswith(("ml_analytics.druid", "ml_analytics.spark", "ml_analytics.cli")))
    assert not bad, bad


def test_no_import_circles():
    _, edges = graph()
    graph_ = {m: {t for t, _l, _n in ts if t != m and t in edges and (m, t) not in ALLOWED_UPWARD}
              for m, ts in edges.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph_[m]):
            if state.get(t) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph_):
        if m not in state:
            visit(m)


def test_no_module_takes_another_modules_private_names():
    mods, edges = graph()
    wrong = []
    for source, targets in edges.items():
        for target, line, names in targets:
            if target == source:
                continue
            if target.rpartition(".")[2].startswith("_") and not target.endswith(("__init__", "__main__")):
                wrong.append(f"{source}:{line} imports the private module {target}")
            wrong += [f"{source}:{line} imports {n} from {target}" for n in names
                      if n.startswith("_") and not n.startswith("__")]
    for source, path in mods.items():  # module._name through an imported module
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                   and (n.level or (n.module or "").startswith("ml_analytics")) for a in n.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                    and node.attr.startswith("_") and not node.attr.startswith("__"):
                wrong.append(f"{source}:{node.lineno} reaches {node.value.id}.{node.attr}")
    assert not wrong, "\n".join(wrong)


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """The graph checks see what they are meant to: a planted upward import and circle are found."""
    fake = tmp_path / "ml_analytics"
    (fake / "cloud_storage").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "errors.py").write_text("from .keys import x\n")
    (fake / "keys.py").write_text("from .errors import y\n")
    (fake / "cloud_storage" / "__init__.py").write_text("")
    (fake / "cloud_storage" / "base.py").write_text("from ..druid import handoff\nfrom ..errors import _secret\n")
    (fake / "druid").mkdir()
    (fake / "druid" / "__init__.py").write_text("")
    (fake / "druid" / "handoff.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    with pytest.raises(AssertionError, match="cloud_storage.base:1 imports ml_analytics.druid.handoff"):
        test_imports_point_down_the_layers()
    with pytest.raises(AssertionError, match="import circle"):
        test_no_import_circles()
    with pytest.raises(AssertionError, match="imports _secret from ml_analytics.errors"):
        test_no_module_takes_another_modules_private_names()
