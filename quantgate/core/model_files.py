"""A candidate's files checked before any work: one line naming the file and what to do, instead of the same
library traceback in every variant's build (a missing config.json, a 0-byte or truncated safetensors file, only a
pickled pytorch_model.bin, no tokenizer) or a model gated with the stock class when its own code was meant to run.

Reads headers only: a safetensors file is checked by its 8-byte header length, its JSON header and the end of its
last tensor against the file size, never by loading a tensor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from quantgate.errors import QuantgateUsageError

# Any one of these is a tokenizer transformers' AutoTokenizer can load (fast, WordPiece, SentencePiece, BPE).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model",
                   "vocab.json")
PICKLES = ("pytorch_model.bin", "model.pt", "pytorch_model.bin.index.json")


class CandidateError(QuantgateUsageError):
    """The candidate (or a baseline model) cannot be used; the message names the file or says what to do."""


def check(path: Path, trust_remote_code: bool) -> None:
    """The transformer module's config, weights and tokenizer, and custom code only with the user's consent."""
    modules = read_json(path / "modules.json", default=[])
    module_dir = path
    for module in modules if isinstance(modules, list) else ():
        if isinstance(module, dict) and str(module.get("type", "")).endswith("Transformer"):
            module_dir = path / str(module.get("path", ""))
            break
    config = module_dir / "config.json"
    if not config.is_file():
        raise CandidateError(f"{config} is missing: the model's architecture is unknown without it; copy the "
                             "whole model directory (config.json, weights, tokenizer)")
    _weights(module_dir)
    if not any((module_dir / name).is_file() for name in TOKENIZER_FILES):
        raise CandidateError(f"{module_dir} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save it beside "
                             "the model with tokenizer.save_pretrained(DIR)")
    if not trust_remote_code:
        _no_custom_code(path, read_json(config, default={}), modules)


def _weights(folder: Path) -> None:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(read_json(index, default={}).get("weight_map", {}).values()))
        if not shards:
            raise CandidateError(f"{index} maps no weights; the model directory is damaged")
    else:
        shards = sorted(p.name for p in folder.glob("*.safetensors"))
    if not shards:
        pickled = [name for name in PICKLES if (folder / name).is_file()]
        if pickled:
            raise CandidateError(
                f"{folder / pickled[0]}: weights only as a pickle, which quantgate never loads (loading one runs "
                "code); convert them: model.save_pretrained(DIR, safe_serialization=True)")
        raise CandidateError(f"{folder} has no weights (model.safetensors); copy the whole model directory")
    for shard in shards:
        _safetensors(folder / shard)


def _safetensors(file: Path) -> None:
    """The header parses and the last tensor ends where the file ends: a cut copy or a 0-byte file is said here."""
    if not file.is_file():
        raise CandidateError(f"{file} is missing (named by the weights' index); copy the whole model directory")
    size = file.stat().st_size
    problem = None
    with open(file, "rb") as fh:
        head = fh.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if length < 2 or 8 + length > size:
            problem = "empty" if size == 0 else "its header is cut short"
        else:
            try:
                header = json.loads(fh.read(length))
                end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
            except (ValueError, TypeError, KeyError, IndexError):
                header, end = None, 0
            if header is None:
                problem = "its header is not valid"
            elif 8 + length + end != size:
                problem = f"{size:,} bytes where its header says {8 + length + end:,} (a cut or damaged copy)"
    if problem:
        raise CandidateError(f"{file}: not a complete safetensors file ({problem}); copy the weights again")


def _no_custom_code(path: Path, config: dict[str, Any], modules: Any) -> None:
    """Code shipped with the model (auto_map, a module class outside sentence-transformers) runs only when the user
    passes --gate-trust-remote-code; without it the stock class would be gated in its place."""
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    own = [str(m.get("type")) for m in modules if isinstance(m, dict)
           and not str(m.get("type", "")).startswith("sentence_transformers.")] if isinstance(modules, list) else []
    if auto_map or own:
        what = f"config.json auto_map {sorted(auto_map)}" if auto_map else f"modules.json {own[0]}"
        raise CandidateError(f"{path} needs its own code ({what}); quantgate runs a model's code only with "
                             "--gate-trust-remote-code: read that code, then pass the option")


def read_json(file: Path, default: Any) -> Any:
    """A model directory's JSON file, `default` when it is absent; a damaged one is one error naming it."""
    if not file.is_file():
        return default
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CandidateError(f"{file} is not valid JSON ({err}); the model directory is damaged") from None
