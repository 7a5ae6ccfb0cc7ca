"""The layout's promises (STYLE.md): the library imports without pytest, and modules stay small."""

import ast

from tests.conftest import ROOT

LIBRARY = ROOT / "quantgate"
RUNS_PYTEST = {"cli.py"}  # `quantgate gate` is pytest.main over the packaged gates
MAX_LINES = 300


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
