"""One module per backend family. Each has `build(ctx, out_dir) -> load_info` and
`load(ctx, artifact) -> model` (a sentence-transformers CrossEncoder or SentenceTransformer,
so every variant exposes `predict(pairs, batch_size=)` or `encode(texts, batch_size=)`).
Heavy libraries are imported inside these functions only."""
