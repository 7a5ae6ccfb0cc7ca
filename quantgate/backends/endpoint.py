"""A served endpoint as a variant (`--gate-endpoint NAME=URL`): the server a team deploys (TEI, vLLM, Infinity,
llama.cpp's server, OpenVINO Model Server) gated against the reference on the same data. Embedders: OpenAI's
`POST /v1/embeddings` (a role's prompt prepended to each text, as a client of such a server sends it); rerankers:
`POST /rerank` with `{"query", "texts"}` (TEI) and `"documents"` (Infinity, Cohere-style), scores read from either
answer. Its scores go through agreement, quality and stored formats like any variant's; its speed is what the
client measures (round trips included), and the verdict says so. Every request has a timeout and a request count
bounded by the data; an unreachable server, an HTTP error or a wrong embedding width is one line.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from quantgate.backends.common import BuildContext, builds_any, estimate, no_skip, query_runs, release
from quantgate.core.cache import Artifact, write_json_atomic
from quantgate.core.spec import VariantSpec
from quantgate.errors import QuantgateUsageError

RUNTIME = "endpoint"
SCORES_KEPT = False  # a server can change behind the same URL: its answers are asked every run
WEIGHT_FILES = ("endpoint.json",)  # no weights here: the record of the server stands in their place
TIMEOUT_S = 60.0  # one request; a server that takes longer for one batch is reported, not waited on
skip_reason = no_skip
model_skip = builds_any  # the server runs what it runs: a wrong model is a failed gate, not a skip
__all__ = ["WEIGHT_FILES", "build", "load", "release", "skip_reason", "model_skip", "runtime_options",
           "memory_estimate", "RUNTIME", "runtime_facts", "ran_with"]


class EndpointError(RuntimeError):
    """The server did not answer as the protocol says (the message is the one line a user reads)."""


def spec(name: str, url: str) -> VariantSpec:
    if not url.startswith(("http://", "https://")):
        raise QuantgateUsageError(f"--gate-endpoint {name}={url}: expected NAME=http://HOST:PORT")
    return VariantSpec(id=name, family="endpoint", precision="served",
                       description=f"a served endpoint at {url} (client-side timing)",
                       options=(("url", url.rstrip("/")), ("served_at", time.time())))


def runtime_options(ctx: BuildContext) -> dict[str, Any]:
    return {}


def memory_estimate(spec: VariantSpec, fp32_weight_bytes: int):
    return estimate(spec, fp32_weight_bytes, build=0.0, load=0.0)  # the model lives in the server's process


def build(ctx: BuildContext, out: Path) -> dict[str, Any]:
    """Nothing is built: what the server says it serves, asked once and kept beside the run's artifacts."""
    url = ctx.spec.opts["url"]
    write_json_atomic(out / "endpoint.json", {"url": url, "served": _served(url)})
    return {"backend": "endpoint", "url": url, "file_name": "endpoint.json"}


def load(ctx: BuildContext, artifact: Artifact):
    url, served = artifact.load_info["url"], _served(artifact.load_info["url"])
    # one request now: an unreachable server or a wrong width is said once, at load, not by every gate. The URL is
    # the server's base (TEI, Infinity) or OpenAI's base URL (vLLM: http://HOST:PORT/v1): the routes are tried under
    # /v1 and at the top, and the first that answers is used
    bases = [url] if url.endswith("/v1") else [url + "/v1", url]
    for base in bases:
        model = Reranker(base, served) if ctx.candidate.kind == "reranker" else \
            Embedder(base, served, _width(ctx.candidate.path))
        try:
            model.predict([("probe", "probe")]) if isinstance(model, Reranker) else model.encode(["probe"])
            return model
        except EndpointError as err:
            if "HTTP 404" not in str(err) or base == bases[-1]:
                raise
    raise AssertionError("unreachable")


def runtime_facts(model) -> dict[str, Any] | None:
    if not isinstance(model, (Embedder, Reranker)):
        return None
    return {"runtime": RUNTIME, "url": model.url, "served": model.served, "timing": "client side, round trips in"}


def ran_with(runtime: dict[str, Any]) -> str:
    served = runtime.get("served", {})
    return f"endpoint {runtime['url']} ({served.get('model') or 'model not reported'}; client-side timing)"


def _request(url: str, payload: dict | None = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        body = err.read().decode("utf-8", "replace")[:200]
        raise EndpointError(f"{url}: HTTP {err.code} {err.reason}: {body}") from None
    except TimeoutError:
        raise EndpointError(f"{url}: no answer within {TIMEOUT_S:g} s") from None
    except urllib.error.URLError as err:
        raise EndpointError(f"{url}: cannot connect ({err.reason}); is the server running?") from None
    except ValueError as err:
        raise EndpointError(f"{url}: the answer is not JSON ({err})") from None


def _served(url: str) -> dict[str, Any]:
    """The model id (and version) the server reports: OpenAI's /v1/models, else TEI's /info; {} when neither."""
    for path, read in (("/v1/models", lambda d: {"model": d["data"][0]["id"]}),
                       ("/models", lambda d: {"model": d["data"][0]["id"]}),
                       ("/info", lambda d: {"model": d.get("model_id"), "version": d.get("version")})):
        try:
            return read(_request(url + path))
        except (EndpointError, KeyError, IndexError, TypeError):
            continue
    return {}


def _width(path: Path) -> int | None:
    """The candidate's embedding width from its Pooling module (None where a Dense layer after it may change it)."""
    try:
        modules = json.loads((Path(path) / "modules.json").read_text())
        if any(str(m.get("type", "")).endswith("Dense") for m in modules):
            return None
        data = json.loads((Path(path) / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return data.get("embedding_dimension") or data.get("word_embedding_dimension")


class Embedder:
    """OpenAI-compatible embeddings behind encode / encode_query / encode_document."""

    def __init__(self, url: str, served: dict[str, Any], width: int | None):
        self.url, self.served, self.width = url, served, width

    def encode(self, texts, batch_size: int = 32, prompt: str | None = None, **_: Any) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        rows = []
        for start in range(0, len(texts), batch_size):
            chunk = [(prompt or "") + t for t in texts[start:start + batch_size]]
            answer = _request(self.url + "/embeddings", {"input": chunk, "model": self.served.get("model", ""),
                                                            "encoding_format": "float"})
            try:
                data = sorted(answer["data"], key=lambda d: d["index"])
                rows.append(np.asarray([d["embedding"] for d in data], dtype=np.float32))
            except (KeyError, TypeError) as err:
                raise EndpointError(f"{self.url}/embeddings: not an OpenAI embeddings answer ({err!r})") from None
            if rows[-1].shape[0] != len(chunk):
                raise EndpointError(f"{self.url}/embeddings: {rows[-1].shape[0]} embeddings for {len(chunk)} texts")
            if self.width and rows[-1].shape[1] != self.width:
                raise EndpointError(f"{self.url}/embeddings: {rows[-1].shape[1]}-wide embeddings, the candidate's "
                                    f"are {self.width}-wide: the server runs another model")
        return np.concatenate(rows) if rows else np.zeros((0, self.width or 1), dtype=np.float32)

    encode_query = encode
    encode_document = encode


class Reranker:
    """TEI / Infinity / Cohere-style /rerank behind CrossEncoder.predict: one request per query's candidates."""

    def __init__(self, url: str, served: dict[str, Any]):
        self.url, self.served = url, served

    def predict(self, pairs, batch_size: int = 32, prompt: str | None = None, **_: Any) -> np.ndarray:
        if prompt:
            raise EndpointError(f"{self.url}/rerank takes no prompt: the candidate applies a default prompt")
        pairs = [tuple(p) for p in pairs]
        scores = np.full(len(pairs), np.nan, dtype=np.float64)
        for start, end in query_runs(pairs):
            docs = [d for _, d in pairs[start:end]]
            answer = _request(self.url + "/rerank", {"query": pairs[start][0], "texts": docs, "documents": docs,
                                                     "return_text": False, "raw_scores": False,
                                                     "model": self.served.get("model", "")})
            results = answer.get("results", answer) if isinstance(answer, dict) else answer
            try:
                for item in results:
                    scores[start + int(item["index"])] = float(item.get("score", item.get("relevance_score")))
            except (KeyError, TypeError, ValueError, IndexError) as err:
                raise EndpointError(f"{self.url}/rerank: not a rerank answer ({err!r})") from None
        if np.isnan(scores).any():
            missing = int(np.isnan(scores).sum())
            raise EndpointError(f"{self.url}/rerank: {missing} candidates came back without a score")
        return scores
