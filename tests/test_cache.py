import threading

import pytest

from quantgate.core.cache import MANIFEST, ArtifactCache, cache_key, verify


def _writer(calls: list, content: str = "weights"):
    def build(out):
        calls.append(out)
        (out / "model.onnx").write_text(content)
        (out / "sub").mkdir()
        (out / "sub" / "config.json").write_text("{}")
        return {"backend": "onnx", "file_name": "model.onnx"}

    return build


def test_key_changes_with_every_input():
    base = ("fmt", "candidate-sha", "spec", {"torch": "2.13.0"})
    keys = {
        cache_key(*base),
        cache_key("fmt", "candidate-sha2", "spec", {"torch": "2.13.0"}),
        cache_key("fmt", "candidate-sha", "spec2", {"torch": "2.13.0"}),
        cache_key("fmt", "candidate-sha", "spec", {"torch": "2.14.0"}),
    }
    assert len(keys) == 4 and cache_key(*base) == cache_key(*base)


def test_second_call_builds_nothing(cache_dir):
    cache, calls = ArtifactCache(cache_dir), []
    first = cache.get_or_build("onnx", "k" * 64, _writer(calls))
    second = cache.get_or_build("onnx", "k" * 64, _writer(calls))
    assert first.built and not second.built and len(calls) == 1
    assert second.path == first.path and second.load_info["file_name"] == "model.onnx"
    assert set(second.manifest["files"]) == {"model.onnx", "sub/config.json"}


def test_interrupted_build_leaves_nothing_trusted(cache_dir):
    cache = ArtifactCache(cache_dir)

    def dies(out):
        (out / "model.onnx").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.get_or_build("onnx", "a" * 64, dies)
    assert not cache.path_for("onnx", "a" * 64).exists()
    assert not list(cache_dir.glob(".tmp-*"))
    calls = []
    assert cache.get_or_build("onnx", "a" * 64, _writer(calls)).built and calls


def test_a_directory_without_manifest_is_rebuilt(cache_dir):
    cache, calls = ArtifactCache(cache_dir), []
    half = cache.path_for("onnx", "b" * 64)
    half.mkdir(parents=True)
    (half / "model.onnx").write_text("half-written by a killed process")
    artifact = cache.get_or_build("onnx", "b" * 64, _writer(calls))
    assert artifact.built and (artifact.path / "model.onnx").read_text() == "weights"


def test_tampered_artifact_is_rebuilt_never_used(cache_dir, caplog):
    cache, calls = ArtifactCache(cache_dir), []
    artifact = cache.get_or_build("onnx", "c" * 64, _writer(calls))
    (artifact.path / "model.onnx").write_text("tampered")
    manifest, why = verify(artifact.path)
    assert manifest is None and "model.onnx" in why
    again = cache.get_or_build("onnx", "c" * 64, _writer(calls))
    assert again.built and len(calls) == 2 and (again.path / "model.onnx").read_text() == "weights"
    assert "not trusted" in caplog.text


def test_rebuild_flag_forces_a_build(cache_dir):
    cache, calls = ArtifactCache(cache_dir), []
    cache.get_or_build("onnx", "d" * 64, _writer(calls))
    assert cache.get_or_build("onnx", "d" * 64, _writer(calls), rebuild=True).built and len(calls) == 2


def test_concurrent_builds_of_one_key_build_once(cache_dir):
    cache, calls, results = ArtifactCache(cache_dir), [], []

    def slow(out):
        import time

        time.sleep(0.3)
        return _writer(calls)(out)

    threads = [threading.Thread(target=lambda: results.append(cache.get_or_build("onnx", "e" * 64, slow)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sum(r.built for r in results) == 1
    assert (results[0].path / MANIFEST).is_file()


def test_folders_left_by_killed_builds_are_removed_at_start_unless_a_build_holds_them(cache_dir):
    """A SIGKILLed build leaves its `.tmp-*` folder (87 MB for a MiniLM ONNX export): the next run's cache removes it
    under the artifact's lock; a folder whose build is running now (its lock held) is left alone."""
    from filelock import FileLock

    cache = ArtifactCache(cache_dir)
    left = cache_dir / ".tmp-onnx-0123456789abcdef-1a2b3c4d"
    running = cache_dir / ".tmp-openvino-fedcba9876543210-5e6f7a8b"
    trash = cache_dir / ".trash-onnx-0123456789abcdef-9c8d7e6f"
    for folder in (left, running, trash):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"x" * 1000)
    with FileLock(str(cache_dir / ".locks" / "openvino-fedcba9876543210.lock")):
        again = ArtifactCache(cache_dir)
    assert sorted(again.removed_stale) == sorted([left.name, trash.name])
    assert not left.exists() and not trash.exists() and running.exists()
    assert ArtifactCache(cache_dir).removed_stale == [running.name] and not running.exists()
    assert cache.sweep() == []


def test_a_second_run_takes_each_variants_scores_and_batch_invariance_from_the_cache(tmp_path, tiny_embedder):
    """Kept scores and measurements: the second run on the same cache scores nothing again and decides the same; a
    kept file altered on disk is not trusted (computed again, and said)."""
    import json

    from tests.test_plugin import run_gate

    def gate(report: str):
        out = run_gate("--candidate", str(tiny_embedder), "--variants", "torch-fp32,onnx", "-k", "not speed",
                       "--gate-cache", str(tmp_path / "cache"), "--gate-report", str(tmp_path / report),
                       "--gate-no-resume")
        assert out.returncode in (0, 1), out.stdout[-3000:]
        return out.stdout + out.stderr, json.loads((tmp_path / report / "verdict.json").read_text())

    first_out, first = gate("first")
    assert "[quantgate] scores of onnx" not in first_out and "[quantgate] batch of onnx" not in first_out
    assert "scores_kept" not in first
    second_out, second = gate("second")
    assert "[quantgate] scores of onnx on quantgate-mini" in second_out
    assert "[quantgate] batch of onnx from" in second_out
    assert second["scores_kept"] == ["onnx"]
    assert {v: e["decision"] for v, e in second["variants"].items()} == \
        {v: e["decision"] for v, e in first["variants"].items()}
    assert second["variants"]["onnx"]["gates"]["batch"]["max_abs_error"] == \
        first["variants"]["onnx"]["gates"]["batch"]["max_abs_error"]
    for kept in [*(tmp_path / "cache" / "scores").glob("variant-*.npz"),
                 *(tmp_path / "cache" / "measurements").glob("batch-*.json")]:
        kept.write_bytes(kept.read_bytes()[:-40] + b"x" * 40)  # altered: the tail rewritten
    third_out, third = gate("third")
    assert "scores_kept" not in third and "[quantgate] batch of onnx from" not in third_out
    assert "its arrays do not match their sha256" in third_out or "unreadable" in third_out
