"""docs/faults.md and the tests agree: every test a row names exists (with its parameter ids), and every message a row
quotes is in the code that prints it, so the table's wording cannot drift from what the user sees."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "faults.md"
SOURCES = [p for folder in ("quantgate", "fixtures", "gates") for p in (ROOT / folder).rglob("*.py")]
TESTS = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py")}



def rows() -> list[list[str]]:
    table = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in table
            if not line.startswith(("| fault ", "| what ", "|---"))]


def test_every_test_a_row_names_exists_with_its_parameters():
    missing, last = [], None
    for cells in rows():
        for i, ref in enumerate(re.findall(r"`([^`]+)`", cells[-1])):
            if m := re.fullmatch(r"tests/(test_\w+\.py)::(test_\w+)(?:\[(.+)\])?", ref):
                file, name, param = m.groups()
                last = (file, name) if i == 0 else last  # `…[id]` in later rows: the table's first test
            elif m := re.fullmatch(r"…::(test_\w+)", ref):
                file, name, param = last[0], m.group(1), None
            elif m := re.fullmatch(r"…\[(.+)\]", ref):
                (file, name), param = last, m.group(1)
            elif m := re.fullmatch(r"(test_\w+)", ref):
                file = next((f for f, text in TESTS.items() if f"def {m.group(1)}(" in text), None)
                name, param = m.group(1), None
            else:
                continue
            text = TESTS.get(file or "", "")
            if f"def {name}(" not in text:
                missing.append(f"{file}::{name}")
            elif param is not None and not all(p in text for p in param.split("/")):
                missing.append(f"{file}::{name}[{param}]")
    assert not missing, missing


def printed() -> str:
    """Every string the code can print, as written: literals (implicit concatenation joined) and f-strings' literal
    parts, one per line."""
    out = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):  # f-strings' parts are Constants too
                out.add(node.value.replace("\n", " "))
    return "\n".join(out)


def unexplained(text: str, code: str) -> list[str]:
    """The words of `text` that the code does not print: walking the text, a stretch of 10+ characters found in one
    of the code's strings is taken; anything else is skipped a word at a time. A path, number, id or quoted value
    is what a message fills in; a skipped word of letters is wording the code may not print."""
    words, i = [], 0
    while i < len(text):
        lo, hi = i, len(text)  # a substring of a substring is a substring: the longest match by bisection
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if text[i:mid] in code else (lo, mid - 1)
        if lo - i >= 10:
            i = lo
            continue
        word = re.match(r"\s*\S*", text[i:]).group(0) or text[i]
        if re.fullmatch(r"[A-Za-z][a-z]{2,}", word.strip(" ,;()")):
            words.append(word.strip(" ,;()"))
        i += len(word)
    return words


def test_every_message_a_row_quotes_is_printed_by_the_code():
    """The wording of each quoted message is the code's (what the case fills in aside), or is in the row's own
    tests, which assert what the user sees (a library's part of a message)."""
    code = printed()
    drifted, section = [], ""
    for cells in rows():
        named = re.findall(r"tests/(test_\w+\.py)", cells[-1])
        section = named[0] if named and cells[-1].startswith("`tests/") else section
        tests = "\n".join(TESTS.get(f, "") for f in {*named, section})
        for quoted in re.findall(r"`([^`]+)`", cells[1]):
            for piece in re.split(r"…", quoted):
                words = unexplained(piece, code + "\n" + tests)
                if len(words) >= 3:  # one or two: the values a message fills in ('query', 'twice' around them)
                    drifted.append(f"{' '.join(words)!r} in {quoted!r}")
    assert not drifted, "\n".join(drifted)
