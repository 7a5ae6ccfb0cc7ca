"""The report's log file: library tracebacks and captured output, kept out of the line a user reads."""

from __future__ import annotations

import contextlib
import logging
import os
import traceback
from pathlib import Path

from quantgate.errors import QuantgateUsageError

LOG_NAME = "gate.log"
logger = logging.getLogger("quantgate")


def root_cause(error: BaseException, limit: int = 300) -> str:
    """`Type: first line` of the innermost exception in the chain (its cause, else its context; an error raised
    `from None` is the root cause its author chose to show)."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        if inner is None:
            break
        error = inner
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    line = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def check_writable(report_dir: str | Path) -> None:
    """The report folder can be made and written (a small file written and removed): an unwritable, full or
    is-a-file --gate-report is said before any work, not found after the whole run."""
    folder = Path(report_dir)
    probe = folder / f".quantgate-write-check-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"x" * 4096)
    except OSError as err:
        raise QuantgateUsageError(f"report folder {str(folder)!r} cannot be written ({err.strerror or err}); "
                                  "pass --gate-report DIR with a writable folder") from None
    finally:  # a full disk leaves the probe created and empty: never left behind
        with contextlib.suppress(OSError):
            probe.unlink()


def attach(report_dir: str | Path) -> Path:
    """Send the quantgate logger's records (with tracebacks) to REPORT/gate.log, once per folder."""
    path = Path(report_dir) / LOG_NAME
    if not any(getattr(h, "baseFilename", None) == str(path.resolve()) for h in logger.handlers):
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return path


def detach(report_dir: str | Path) -> None:
    """Stop writing to REPORT/gate.log (the run has ended: a later run in the same process logs elsewhere)."""
    target = str((Path(report_dir) / LOG_NAME).resolve())
    for handler in [h for h in logger.handlers if getattr(h, "baseFilename", None) == target]:
        logger.removeHandler(handler)
        handler.close()


def write_failure(path: Path, variant: str, gate_name: str, excinfo, sections) -> None:
    """The whole traceback of a failed or crashed gate and the output the test captured."""
    text = "".join(traceback.format_exception(excinfo.type, excinfo.value, excinfo.tb))
    captured = "\n".join(f"--- {title} ---\n{body}" for title, body in sections if body.strip())
    logger.error("%s: %s\n%s%s", variant, gate_name, text, f"\n{captured}" if captured else "")
