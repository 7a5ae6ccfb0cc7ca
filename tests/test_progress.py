"""Progress bars in a CI log: a line at most every NON_TTY_INTERVAL seconds, never a redraw flood."""

import time

from quantgate import progress


class Log:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.tty


def _work(monkeypatch, log: Log, seconds: float, updates: int, interval: float) -> None:
    monkeypatch.setattr(progress, "NON_TTY_INTERVAL", interval)
    monkeypatch.setattr(progress, "DELAY", 0.0 if seconds > 0.5 else progress.DELAY)
    progress.configure(log)
    try:
        with progress.bar(updates, "scoring", "pair") as bar:
            for _ in range(updates):
                time.sleep(seconds / updates)
                bar.update(1)
    finally:
        progress.configure(None)


def test_a_log_gets_a_few_lines_not_one_per_update(monkeypatch):
    log = Log(tty=False)
    _work(monkeypatch, log, seconds=2.0, updates=200, interval=0.5)
    lines = [line for line in log.text.replace("\r", "\n").split("\n") if line.strip()]
    assert 2 <= len(lines) <= 8, lines  # about every 0.5 s of 2 s, and the final line; not 200
    assert lines[-1].startswith("[quantgate] scoring") and "200/200" in lines[-1] and "pair/s" in lines[-1]


def test_short_work_stays_silent(monkeypatch):
    log = Log(tty=False)
    _work(monkeypatch, log, seconds=0.05, updates=5, interval=0.5)
    assert log.text == ""


def test_nested_bars_in_a_log_move_no_cursor(monkeypatch):
    """An accuracy-control trial bar with a scoring bar inside it: plain lines, no terminal escape codes."""
    monkeypatch.setattr(progress, "NON_TTY_INTERVAL", 0.2)
    monkeypatch.setattr(progress, "DELAY", 0.0)
    log = Log(tty=False)
    progress.configure(log)
    try:
        with progress.bar(None, "trials", "trial") as trials:
            for _ in range(2):
                with progress.bar(10, "scoring", "pair") as inner:
                    for _ in range(10):
                        time.sleep(0.03)
                        inner.update(1)
                trials.update(1)
    finally:
        progress.configure(None)
    assert "scoring" in log.text and "trials" in log.text and "\x1b" not in log.text


def test_the_scoring_bar_counts_the_texts_it_names(monkeypatch):
    """An embedder's scoring pass encodes texts in calls of whole blocks; its bar counts texts (its total is the texts,
    each call advances it by the texts it encoded), not calls."""
    from quantgate.evaluation import scoring

    monkeypatch.setattr(progress, "DELAY", 0.0)
    log = Log(tty=False)
    progress.configure(log)
    texts = [f"text {i}" for i in range(70)]
    try:
        scoring._in_calls(lambda chunk: [[0.0]] * len(chunk), texts, [32, 64, 70], "encoding set", "text")
    finally:
        progress.configure(None)
    lines = [line for line in log.text.replace("\r", "\n").splitlines() if "encoding set" in line]
    assert lines and "70/70" in lines[-1] and "text" in lines[-1], log.text
