"""Writes docs/options.md from the plugin's own option declarations. Run from the repository root:
    python scripts/options_doc.py
"""

from pathlib import Path

from quantgate.fixtures.options import options_markdown

if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "docs" / "options.md"
    path.write_text(options_markdown(), encoding="utf-8")
    print(f"wrote {path}")
