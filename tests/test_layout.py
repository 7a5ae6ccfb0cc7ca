"""The layout's promises (STYLE.md): the library imports without pytest, modules stay small, and the rooms import
one way (pyproject.toml's import-linter layers contract, checked on grimp's import graph of the package, what
import-linter reads, the imports inside functions included)."""

import ast
import tomllib

import grimp
import pytest

from tests.conftest import ROOT

LIBRARY = ROOT / "quantgate"
RUNS_PYTEST = {"cli.py"}  # `quantgate gate` is pytest.main over the packaged gates
MAX_LINES = 300
CONTRACT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_library_module_imports_pytest():
    offenders = [str(p.relative_to(ROOT)) for p in LIBRARY.rglob("*.py")
                 if p.name not in RUNS_PYTEST and "pytest" in _imports(p)]
    assert offenders == [], f"library modules that import pytest (outcomes belong in fixtures/ or gates/): {offenders}"


# Where a verdict's rows may be read by key: the typed model's from_dict, the format's own module (its converters and
# the writer's store), merge (which writes the merged rows) and config (thresholds.toml's own [variants] tables).
VERDICT_KEYS = {"variants", "gates", "formats"}
READS_VERDICT_KEYS = {"quantgate/core/results.py", "quantgate/results/verdict.py", "quantgate/results/merge.py",
                      "quantgate/config.py"}


def _verdict_key_reads(path) -> list[int]:
    """Lines that index a dict by a verdict row key: `x["gates"]` or `x.get("gates", ...)`."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        key = node.slice if isinstance(node, ast.Subscript) else None
        if isinstance(key, ast.Constant) and key.value in VERDICT_KEYS:
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in VERDICT_KEYS:
            lines.append(node.lineno)
    return lines


def test_verdict_rows_are_read_through_the_typed_results_only(tmp_path):
    """Readers take RunResult / VariantResult / GateResult (quantgate.core.results), not string paths into
    verdict.json; the check itself catches such a read."""
    found = {str(p.relative_to(ROOT)): lines for folder in ("quantgate", "fixtures", "gates")
             for p in (ROOT / folder).rglob("*.py") if (lines := _verdict_key_reads(p))}
    assert set(found) <= READS_VERDICT_KEYS, {k: v for k, v in found.items() if k not in READS_VERDICT_KEYS}
    reader = tmp_path / "reader.py"
    reader.write_text('def passed(verdict):\n    return [v for v, e in verdict.get("variants", {}).items()]\n')
    assert _verdict_key_reads(reader) == [2]


def test_no_module_passes_the_size_limit():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
             for folder in ("quantgate", "fixtures", "gates") for p in (ROOT / folder).rglob("*.py")}
    assert sizes and max(sizes.values()) <= MAX_LINES, {k: v for k, v in sizes.items() if v > MAX_LINES}


def test_no_library_function_takes_the_session():
    """Library code takes the context and the services it uses (GateContext, ScoreStore, Evaluator, the factory),
    never the plugin's GateSession: no parameter named after it, no import of it outside quantgate/session/."""
    offenders = []
    for path in LIBRARY.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        name = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                offenders += [f"{name}:{node.lineno} {node.name}({a.arg})" for a in node.args.args
                              if a.arg in ("gate", "session", "gate_session")]
            if (isinstance(node, ast.ImportFrom) and node.module == "quantgate.session.core"
                    and path.parent.name != "session"):
                offenders.append(f"{name}:{node.lineno} imports quantgate.session.core")
    assert offenders == [], offenders


def _names(line: str) -> list[str]:
    return [n.strip().removeprefix("quantgate.") for n in line.replace("|", ":").split(":")]


def _layers() -> list[grimp.Layer]:
    return [grimp.Layer(*_names(line), independent="|" in line) for line in CONTRACT["layers"]]


@pytest.fixture
def graph():
    return grimp.build_graph("quantgate", cache_dir=None)


def _illegal(graph) -> list[str]:
    found = graph.find_illegal_dependencies_for_layers(layers=_layers(), containers={"quantgate"})
    return sorted(f"{d.importer} -> {d.imported}: {[(*sorted(r.heads), *r.middle, *sorted(r.tails)) for r in d.routes]}"
                  for d in found)


def test_every_room_of_the_package_is_in_a_layer(graph):
    rooms = {m.split(".")[1] for m in graph.modules if m.count(".") >= 1}
    named = {name for line in CONTRACT["layers"] for name in _names(line)}
    assert rooms and rooms <= named, f"rooms in no layer of pyproject.toml's contract: {sorted(rooms - named)}"


def test_the_rooms_import_one_way(graph):
    assert _illegal(graph) == []


def test_an_import_that_runs_back_up_breaks_the_contract(graph):
    """The check is not vacuous: the variant spec importing the session (a room six layers up) is caught."""
    graph.add_import(importer="quantgate.core.spec", imported="quantgate.session.core")
    said = "quantgate.core -> quantgate.session: [('quantgate.core.spec', 'quantgate.session.core')]"
    assert _illegal(graph) == [said]
