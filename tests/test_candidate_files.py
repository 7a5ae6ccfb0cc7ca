"""A candidate's files checked before any build (quantgate.core.model_files): each fault one line (docs/faults.md,
"The candidate")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


def _cut(name: str, keep: int | None = None):
    def apply(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(b"" if keep is None else data[:keep])
    return apply


def _remove(*names: str):
    return lambda folder: [(folder / n).unlink() for n in names if (folder / n).exists()]


def _pickled(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")


def _config_key(key: str, value):
    def apply(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config[key] = value
        (folder / "config.json").write_text(json.dumps(config))
    return apply


CANDIDATE_FAULTS = {
    "no-config": (_remove("config.json"), r"config.json is missing"),
    "weights-0-bytes": (_cut("model.safetensors"), r"model.safetensors: not a complete safetensors file \(empty\)"),
    "weights-truncated": (_cut("model.safetensors", 20_000), r"model.safetensors: not a complete safetensors file "
                                                             r"\([\d,]+ bytes where its header says"),
    "weights-pickled-only": (_pickled, r"pytorch_model.bin: weights only as a pickle"),
    "no-weights": (_remove("model.safetensors"), r"has no weights"),
    "no-tokenizer": (_remove("tokenizer.json", "vocab.txt"), r"has no tokenizer"),
    "custom-code": (_config_key("auto_map", {"AutoModel": "modeling_mine.MyModel"}),
                    r"needs its own code \(config.json auto_map \['AutoModel'\]\); .+ --gate-trust-remote-code"),
    "config-not-json": (_cut("config.json", 10), r"config.json is not valid JSON"),
}


@pytest.mark.parametrize("fault", CANDIDATE_FAULTS)
def test_each_candidate_fault_is_one_line_before_any_build(tiny_embedder, tmp_path, fault):
    from quantgate.core.candidate import resolve
    from quantgate.errors import QuantgateUsageError

    folder = tmp_path / "model"
    shutil.copytree(tiny_embedder, folder)
    resolve(str(folder))  # the copy is valid
    mutate, message = CANDIDATE_FAULTS[fault]
    mutate(folder)
    with pytest.raises(QuantgateUsageError, match=message) as caught:
        resolve(str(folder))
    assert "\n" not in str(caught.value)
    if fault == "custom-code":
        resolve(str(folder), trust_remote_code=True)  # the user's consent: the files are gated as they are
