"""A small OpenAI-compatible embeddings server for the endpoint tests: a sentence-transformers model behind
`GET /v1/models` and `POST /v1/embeddings`, on 127.0.0.1 only, on a free port it prints as `PORT <n>`.
`--pooling cls` plants a pooling bug (the first token's vector instead of the model's own pooling), as a serving
engine that pools ModernBERT or a decoder the wrong way does. Started and stopped by the test that uses it.

    python tests/endpoint_server.py MODEL [--pooling model|cls]
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from sentence_transformers import SentenceTransformer

MAX_BODY = 8 * 2**20  # a request body larger than this is refused (413)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--pooling", choices=("model", "cls"), default="model")
    args = parser.parse_args()
    model = SentenceTransformer(args.model, device="cpu")

    def embed(texts: list[str]) -> np.ndarray:
        if args.pooling == "model":
            return model.encode(texts, convert_to_numpy=True, show_progress_bar=False)
        tokens = model.encode(texts, output_value="token_embeddings", show_progress_bar=False)
        first = np.stack([t[0].float().numpy() for t in tokens])
        return first / np.linalg.norm(first, axis=1, keepdims=True)

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": f"test-server/{args.pooling}", "object": "model"}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.path != "/v1/embeddings" or length > MAX_BODY:
                self._send(404 if self.path != "/v1/embeddings" else 413, {"error": "refused"})
                return
            request = json.loads(self.rfile.read(length))
            texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
            vectors = embed(texts)
            self._send(200, {"object": "list", "model": f"test-server/{args.pooling}", "data": [
                {"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]})

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
