"""How the gate feeds the model: the way its users do (its prompts per role, its own similarity).

Embedders: queries go through `encode_query` with the query prompt, documents through `encode_document` with the
document prompt, and a text that is both is encoded once per role. Each prompt is what mteb applies for the task
type (`mteb.models.abs_encoder.get_prompt_name` over the model's `prompts`: "Retrieval-query", "Retrieval",
"query", ...), and where mteb finds none, what sentence-transformers applies without one (`encode_query`: "query";
`encode_document`: "document", "passage", "corpus"; then `default_prompt_name`). A team's production prompts
(`--gate-prompts`, thresholds.toml `[prompts]`) replace the model's for every task type; `none` sends no prompt.
Pairs are then compared with the model's `similarity_fn_name` (cosine when it names none), as
`SentenceTransformer.similarity` and mteb's search do.

Rerankers: `CrossEncoder.predict` applies the model's `default_prompt_name` by itself; a team's query / document
prompts are prefixes of the pair's texts, as mteb's CrossEncoderWrapper's `query_prefix` / `passage_prefix`.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

ROLES = ("query", "document")
TASK_TYPES = {"reranking": "Reranking", "retrieval": "Retrieval"}  # the gate's task -> mteb's task type
SIMILARITIES = ("cosine", "dot", "euclidean", "manhattan")  # sentence-transformers' SimilarityFunction values
SOURCES = ("the model's config", "--gate-prompts", "thresholds.toml [prompts]", "none")


@dataclass(frozen=True)
class Encoding:
    """What the gate sends a variant and how it compares embeddings; resolved once per run (`resolve`)."""

    source: str  # one of SOURCES: where the prompts come from
    prompts: tuple[tuple[str, str, str], ...] = ()  # (task, role, prompt) for every task in TASK_TYPES and role
    similarity: str = "cosine"  # embedders
    declared: tuple[tuple[str, str], ...] = ()  # the model's own prompts (name, text), whatever was used
    pair_prompt: str = ""  # rerankers: the prompt CrossEncoder.predict applies (its default_prompt_name's)

    def prompt(self, task: str, role: str) -> str:
        return next((p for t, r, p in self.prompts if t == task and r == role), "")

    def key(self, task: str, role: str, text: str) -> str:
        """The row of an encoded text in a scoring pass's embeddings: with prompts, a text is encoded once per role
        and prompt; a run without prompts encodes each text once, keyed by itself."""
        return text if not self.prompted else f"{role}\x1f{self.prompt(task, role)}\x1f{text}"

    @property
    def prompted(self) -> bool:
        return any(p for _, _, p in self.prompts) or bool(self.pair_prompt)

    def cache_material(self) -> list[dict[str, Any]]:
        """What enters a scores cache key: nothing for the plain encoding (no prompt, cosine), so scores kept before
        prompts existed stay valid; the whole encoding otherwise."""
        return [self.to_dict()] if self.prompted or self.similarity != "cosine" else []

    def ignores_declared(self) -> bool:
        """The model declares prompts and the run sends none of them: its users' inputs are not the gate's."""
        return bool(self.declared) and not self.prompted

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "similarity": self.similarity,
                               "prompts": {task: {role: self.prompt(task, role) for role in ROLES}
                                           for task in TASK_TYPES}}
        if self.pair_prompt:
            out["pair_prompt"] = self.pair_prompt
        if self.declared:
            out["model_prompts"] = dict(self.declared)
        return out

    def describe(self, kind: str) -> str:
        """One line for the header, summary and progress: which prompts and which similarity."""
        if not self.prompted:
            shown = "no prompts"
        else:
            parts = []
            for task in TASK_TYPES:
                q, d = self.prompt(task, "query"), self.prompt(task, "document")
                parts.append(f"{task}: query {q!r}, document {d!r}")
            if self.pair_prompt:
                parts.append(f"pair prompt {self.pair_prompt!r}")
            shown = "; ".join(parts)
        similarity = f"; similarity {self.similarity}" if kind == "embedder" else ""
        return f"{shown} ({self.source}){similarity}"

    # -- comparing embeddings -----------------------------------------------------------------------------
    def prepare(self, embeddings: np.ndarray) -> np.ndarray:
        """What the scoring pass keeps of a variant's embeddings: unit rows for cosine (their dot products are
        cosines), the model's own vectors for the other similarities."""
        return unit_rows(embeddings) if self.similarity == "cosine" else embeddings

    def pairwise(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The similarity of row i of `a` with row i of `b` (prepared rows): the model's similarity_fn_name, with
        sentence-transformers' signs (distances negated: higher is more similar)."""
        if self.similarity in ("cosine", "dot"):
            return np.einsum("ij,ij->i", a, b)
        if self.similarity == "euclidean":
            return -np.linalg.norm(a - b, axis=1)
        return -np.abs(a - b).sum(axis=1)

    def matrix(self, queries: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Every query against every document (prepared rows)."""
        if self.similarity in ("cosine", "dot"):
            return queries @ docs.T
        if self.similarity == "euclidean":
            squared = (queries ** 2).sum(1)[:, None] + (docs ** 2).sum(1)[None, :] - 2 * queries @ docs.T
            return -np.sqrt(np.maximum(squared, 0.0))
        return -np.stack([np.abs(docs - q).sum(axis=1) for q in queries])


PLAIN = Encoding("none")  # no prompts, cosine: what a caller that names no encoding gets


def unit_rows(emb: np.ndarray) -> np.ndarray:
    """Embeddings scaled to unit length, row by row (a zero row stays zero): their dot products are cosines."""
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


class PromptsError(ValueError):
    """--gate-prompts or [prompts] is malformed (the message says the form)."""


def parse_prompts(value: str) -> dict[str, str]:
    """`query=TEXT,document=TEXT` (either, in any order; a prompt may hold commas; `\\n` and `\\t` are a newline and
    a tab), or `none` (send no prompt). Returns {role: prompt}; `none` is {}."""
    text = value.strip()
    if text.lower() == "none":
        return {}
    marks = list(re.finditer(r"(?:^|,)\s*(query|document)=", value))
    if not marks or marks[0].start() != 0:
        raise PromptsError(f"--gate-prompts {value!r}: expected query=TEXT,document=TEXT (either may be left out) "
                           "or none")
    out: dict[str, str] = {}
    for mark, after in zip(marks, [*marks[1:], None]):
        role = mark.group(1)
        if role in out:
            raise PromptsError(f"--gate-prompts {value!r}: {role}= given twice")
        raw = value[mark.end():after.start() if after else len(value)]
        out[role] = raw.replace("\\n", "\n").replace("\\t", "\t")
    return out


def model_config(path: Path) -> dict[str, Any]:
    file = Path(path) / "config_sentence_transformers.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def resolve(path: Path, kind: str, given: dict[str, str] | None, given_by: str | None) -> Encoding:
    """The run's encoding for the candidate at `path`. `given` ({role: prompt}, {} for none) by `given_by` (a SOURCES
    entry) replaces the model's prompts; None keeps them."""
    config = model_config(path)
    declared = {str(k): str(v) for k, v in (config.get("prompts") or {}).items() if v}
    similarity = str(config.get("similarity_fn_name") or "cosine")
    if similarity not in SIMILARITIES:
        raise PromptsError(f"{path}: config_sentence_transformers.json names similarity_fn_name {similarity!r}; "
                           f"the gate compares by {', '.join(SIMILARITIES)}")
    default = declared.get(config.get("default_prompt_name") or "", "")
    if given is not None:
        prompts = tuple((task, role, given.get(role, "")) for task in TASK_TYPES for role in ROLES)
        pair = default if given and kind == "reranker" else ""
        return Encoding(given_by or SOURCES[1], prompts, similarity, tuple(declared.items()), pair)
    if kind == "reranker":  # CrossEncoder.predict applies default_prompt_name itself; mteb adds no prefix
        return Encoding(SOURCES[0] if default else SOURCES[3], (), similarity, tuple(declared.items()), default)
    prompts = tuple((task, role, _model_prompt(declared, default, TASK_TYPES[task], role))
                    for task in TASK_TYPES for role in ROLES)
    source = SOURCES[0] if any(p for _, _, p in prompts) else SOURCES[3]
    return Encoding(source, prompts, similarity, tuple(declared.items()))


def _model_prompt(declared: dict[str, str], default: str, task_type: str, role: str) -> str:
    """The prompt mteb sends for `task_type` and `role`, else the one sentence-transformers' encode_query /
    encode_document would pick (the roles' names, then default_prompt_name)."""
    if not declared:
        return ""
    from mteb.models.abs_encoder import AbsEncoder, get_prompt_name
    from mteb.types import PromptType

    with warnings.catch_warnings():  # mteb warns of every key that is not a task type or role ("passage")
        warnings.simplefilter("ignore")
        valid, _ = AbsEncoder.validate_task_to_prompt_name(declared, raise_for_invalid_keys=False)
    name = get_prompt_name(valid or None, SimpleNamespace(name=None, type=task_type), PromptType(role))
    if name is not None:
        return valid[name]
    names = ("query",) if role == "query" else ("document", "passage", "corpus")
    return next((declared[n] for n in names if n in declared), default)
