"""Installed, not checked out: quantgate in a fresh virtual environment outside the checkout runs the
gate from another directory on the embedded default set, with nothing beside it."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # gate runs of minutes: CI's fresh-machine part leaves them to the full part

OURS = ("quantgate", "__editable__", "__editable___quantgate")


def _checkout_copy(dst: Path) -> Path:
    """The files a clone holds (git ls-files), without build outputs or a virtual environment."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    files = listed.stdout.decode().split("\0") if listed.returncode == 0 else []
    if not files:
        shutil.copytree(ROOT, dst, symlinks=True, ignore=shutil.ignore_patterns(".venv", ".git", "*.egg-info", "build"))
        return dst
    for name in filter(None, files):
        target = dst / name
        target.parent.mkdir(parents=True, exist_ok=True)
        source = ROOT / name
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.exists():
            shutil.copy2(source, target)
    return dst


def _fresh_venv(root: Path) -> Path:
    """A new venv whose dependencies come from this environment (offline: no download), but not quantgate:
    a folder of links to every installed distribution except quantgate's own files, put on its path by a .pth.
    The wheel is built by this environment's setuptools (the venv's bundled one is older)."""
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    deps = root / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(OURS) and entry.name not in ("fixtures", "gates"):
            (deps / entry.name).symlink_to(entry)
    purelib = subprocess.run([str(root / "venv" / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "quantgate-deps.pth").write_text(f"{deps}\n")
    return root / "venv" / "bin" / "python"


def test_installed_quantgate_gates_from_another_directory(tmp_path):
    python = _fresh_venv(tmp_path)
    source = _checkout_copy(tmp_path / "checkout")
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "wheels"), str(source)], capture_output=True, text=True, timeout=600)
    assert wheel.returncode == 0, wheel.stderr[-3000:]
    [built] = (tmp_path / "wheels").glob("quantgate-*.whl")
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(built)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    shutil.rmtree(source)  # nothing of the checkout is needed any more
    where = subprocess.run([str(python), "-c", "import importlib.util as u, quantgate; "
                            "print(quantgate.__file__, u.find_spec('fixtures'), "
                            "u.find_spec('quantgate.gates') is not None)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout.split()
    assert "site-packages" in where[0] and where[1:] == ["None", "True"]  # no top-level `fixtures` installed

    model_repo = tmp_path / "a-team-repo"  # a model's own repository: no thresholds.toml, no data, no ../shared
    model_repo.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QUANTGATE_CACHE": str(tmp_path / "cache")}
    env.pop("QUANTGATE_DATA", None)
    run = subprocess.run([str(python.parent / "quantgate"), "gate", "-q", "-p", "no:cacheprovider",
                          "--variants", "torch-fp32,onnx"], cwd=model_repo, capture_output=True, text=True,
                         timeout=900, env=env)
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-3000:]
    verdict = json.loads((model_repo / "gate-report" / "verdict.json").read_text())
    assert verdict["complete"] and set(verdict["variants"]) == {"torch-fp32", "onnx"}
    assert verdict["data"][0]["name"] == "quantgate-mini" and verdict["data"][0]["embedded"]
    assert "site-packages" in verdict["thresholds"]["path"]  # the packaged thresholds.toml
    assert (model_repo / "gate-report" / "summary.md").is_file()
