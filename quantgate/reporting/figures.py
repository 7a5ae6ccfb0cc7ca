"""What every picture of the reports shares: the decisions' colours and markers, and writing a figure atomically."""

from __future__ import annotations

from pathlib import Path

from quantgate.core.cache import atomic_target

STYLE = {"pass": ("tab:green", "o"), "inconclusive": ("tab:orange", "s"), "fail": ("tab:red", "X")}


def save_figure(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt  # noqa: PLC0415 -- matplotlib only once a picture is drawn

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
