"""docs/options.md is generated from the plugin's declarations and cannot drift from `pytest --help`."""

import re
import subprocess
import sys
from pathlib import Path

from quantgate.fixtures.options import options_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "options.md"


def test_options_doc_is_what_the_plugin_declares():
    assert DOC.read_text(encoding="utf-8") == options_markdown(), "stale: python scripts/options_doc.py"


def test_every_option_pytest_help_shows_is_documented():
    shown = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, check=True,
                           cwd=DOC.parents[1]).stdout
    section = shown.split("quantgate: model regression and quantization gate:", 1)[1].split("\n\n", 1)[0]
    names = set(re.findall(r"^\s+(--[\w-]+)", section, flags=re.M))
    documented = set(re.findall(r"`(--[\w-]+)`", DOC.read_text(encoding="utf-8")))
    assert names and names <= documented, sorted(names - documented)
