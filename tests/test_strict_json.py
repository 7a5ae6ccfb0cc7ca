"""Every JSON the project writes is strict RFC 8259 JSON (no NaN / Infinity tokens), and a non-finite team check
fails; the readers of a verdict refuse a file that only looks like one."""

import json
import math

import pytest

from quantgate.core.cache import strict, write_json_atomic
from quantgate.public import Check


def _refuse(token: str):
    raise ValueError(f"non-standard JSON token {token}")


def test_non_finite_numbers_are_written_as_null_and_parse_strictly(tmp_path):
    data = {"a": float("nan"), "b": [1.0, float("inf"), {"c": -math.inf}], "d": "nan", "e": 2}
    path = write_json_atomic(tmp_path / "v.json", data)
    assert json.loads(path.read_text(), parse_constant=_refuse) == {"a": None, "b": [1.0, None, {"c": None}],
                                                                    "d": "nan", "e": 2}
    assert strict((1.5, float("nan"))) == [1.5, None]


def test_a_non_finite_team_check_fails_unless_the_team_says_otherwise():
    check = Check.decide("drift", float("nan"))
    assert not check.passed and check.failures == [
        "drift failed (value nan); a non-finite value fails unless the check says passed=True"]
    assert Check.decide("drift", float("inf"), passed=True).passed
    assert Check.decide("drift", 0.3).passed  # a finite value without a limit is informational


@pytest.mark.parametrize("text, said", [
    ('{"format": "quantgate-verdict/2"}', "has no candidate, variants, complete: not a verdict this quantgate wrote"),
    ('{"format": "quantgate-verdict/3", "variants": {}}', "this quantgate reads 'quantgate-verdict/2'"),
])
def test_report_refuses_what_only_looks_like_a_verdict(tmp_path, text, said):
    import subprocess
    import sys

    (tmp_path / "verdict.json").write_text(text)
    out = subprocess.run([sys.executable, "-m", "quantgate.cli", "report", "--verdict", str(tmp_path / "verdict.json")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and said in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "summary.md").exists()
