"""A verdict.json a person edited or cut, fed to report, publish and merge: any content ends in a result or one line
(exit 2 for a refusal, 1 for publish's own refusals), never a traceback (hypothesis; a fixed seed and example count
here, more in the slow test). tests/data/verdict.json is a real verdict of the embedded default, cut down to three
variants (made by the gate, then trimmed; the format is checked by test_the_fixture_is_a_current_verdict)."""

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantgate import cli
from quantgate.results.verdict import FORMAT

FIXTURE = Path(__file__).resolve().parent / "data" / "verdict.json"
VERDICT = json.loads(FIXTURE.read_text(encoding="utf-8"))
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                  max_size=3), max_leaves=6)


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))


PATHS = [p for p in _paths(VERDICT) if p]


@st.composite
def edited(draw):
    data = copy.deepcopy(VERDICT)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        node = data
        try:
            for key in path[:-1]:
                node = node[key]
            if draw(st.booleans()) and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = draw(JSON)
        except (KeyError, IndexError, TypeError):
            continue
    return data


def _commands(folder: Path):
    verdict = str(folder / "verdict.json")
    return {"report": ["report", "--verdict", verdict],
            "publish": ["publish", "--repo-id", "org/model", "--dry-run", "--verdict", verdict],
            "merge": ["merge", str(folder), "--out", str(folder / "merged"), "--history", str(folder / "history")]}


def _check(tmp_path_factory, capsys, data) -> None:
    folder = tmp_path_factory.mktemp("verdict")
    (folder / "verdict.json").write_text(json.dumps(data), encoding="utf-8")
    for name, argv in _commands(folder).items():
        code = cli.main(argv)
        err = capsys.readouterr().err.strip()
        assert code in (0, 1, 2), (name, code)
        assert "Traceback" not in err and len(err.splitlines()) <= 1, (name, err)


def test_the_fixture_is_a_current_verdict(tmp_path_factory, capsys):
    assert VERDICT["format"] == FORMAT
    _check(tmp_path_factory, capsys, VERDICT)


FUZZ = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(data=edited())
def test_an_edited_verdict_is_a_result_or_one_line(tmp_path_factory, capsys, data):
    _check(tmp_path_factory, capsys, data)


@pytest.mark.slow
@settings(FUZZ, max_examples=150)
@given(data=edited())
def test_many_edited_verdicts_are_a_result_or_one_line(tmp_path_factory, capsys, data):
    _check(tmp_path_factory, capsys, data)
