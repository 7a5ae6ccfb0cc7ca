"""The artifact cache: one directory per variant, keyed by what decides its bytes.

The key hashes the candidate's files, the variant spec, the calibration inputs and the
library versions. A build writes into a temporary directory beside the final one and is
renamed into place only after its manifest (every file's sha256) is written, under a file
lock, so an interrupted or concurrent build is never reused. A cached artifact whose files
no longer match its manifest is rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from platformdirs import user_cache_dir

from quantgate.core.candidate import file_sha256

MANIFEST = "quantgate-artifact.json"
logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("QUANTGATE_CACHE", user_cache_dir("quantgate")))


def cache_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class Artifact:
    variant: str
    path: Path
    manifest: dict[str, Any]
    built: bool  # built in this run (False: taken from the cache)

    @property
    def load_info(self) -> dict[str, Any]:
        return self.manifest.get("load", {})

    @property
    def size_bytes(self) -> int:
        return sum((self.path / rel).stat().st_size for rel in self.manifest["files"])


def hash_files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): file_sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def verify(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(manifest, None) when every file matches; (None, why) otherwise."""
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        return None, "no manifest (an interrupted build?)"
    try:
        manifest = json.loads(manifest_file.read_text())
        expected = manifest["files"]
    except (json.JSONDecodeError, KeyError) as err:
        return None, f"unreadable manifest ({err})"
    actual = hash_files(path)
    if actual != expected:
        changed = sorted(set(actual) ^ set(expected) | {k for k in actual if expected.get(k) != actual[k]})
        return None, f"files differ from the manifest: {', '.join(changed[:3])}"
    return manifest, None


class ArtifactCache:
    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.removed_stale = self.sweep()

    def sweep(self) -> list[str]:
        """Remove what killed builds left: `.tmp-NAME-*` folders whose artifact's lock is free (a build that holds
        it is running now) and `.trash-*` folders (an old artifact renamed away). The names removed."""
        removed = []
        (self.root / ".locks").mkdir(exist_ok=True)
        for folder in sorted(self.root.glob(".tmp-*")) + sorted(self.root.glob(".trash-*")):
            name = folder.name.split("-", 1)[1].rsplit("-", 1)[0]
            if folder.name.startswith(".tmp-"):
                try:
                    with FileLock(str(self.root / ".locks" / f"{name}.lock"), timeout=0):
                        shutil.rmtree(folder, ignore_errors=True)
                except Timeout:
                    continue
            else:
                shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
        if removed:
            logger.warning("removed %d folder(s) left by interrupted builds in %s", len(removed), self.root)
        return removed

    def path_for(self, variant: str, key: str) -> Path:
        return self.root / f"{variant}-{key[:16]}"

    def has(self, variant: str, key: str) -> bool:
        """Whether an artifact with this key is in the cache (its manifest says so; get_or_build verifies
        its files before it is used)."""
        try:
            return json.loads((self.path_for(variant, key) / MANIFEST).read_text()).get("key") == key
        except (OSError, ValueError, AttributeError):
            return False

    def lock(self, variant: str, key: str):
        locks = self.root / ".locks"
        locks.mkdir(exist_ok=True)
        return FileLock(str(locks / f"{variant}-{key[:16]}.lock"))

    def get_or_build(
        self,
        variant: str,
        key: str,
        build: Callable[[Path], dict[str, Any]],
        *,
        rebuild: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> Artifact:
        """The cached artifact, or a fresh build; `build(tmp_dir)` returns the manifest's `load` section."""
        final = self.path_for(variant, key)
        with self.lock(variant, key):
            if final.exists() and not rebuild:
                manifest, why = verify(final)
                if manifest is not None and manifest.get("key") == key:
                    return Artifact(variant, final, manifest, built=False)
                logger.warning("cached artifact %s is not trusted (%s): rebuilding", final, why or "key differs")
            tmp = self.root / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir(parents=True)
            try:
                started = time.perf_counter()
                load = build(tmp)
                manifest = {
                    "variant": variant,
                    "key": key,
                    "load": load,
                    "build_seconds": round(time.perf_counter() - started, 2),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    **(meta or {}),
                    "files": hash_files(tmp),
                }
                write_json_atomic(tmp / MANIFEST, manifest)
                if final.exists():
                    trash = self.root / f".trash-{final.name}-{uuid.uuid4().hex[:8]}"
                    os.rename(final, trash)
                    shutil.rmtree(trash, ignore_errors=True)
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return Artifact(variant, final, manifest, built=True)


@contextmanager
def atomic_target(path: Path):
    """A temporary path beside `path`, renamed onto it when the block succeeds: a reader sees the
    old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Path, text: str) -> Path:
    """Write beside the target, fsync, then rename."""
    with atomic_target(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def write_json_atomic(path: Path, data: Any) -> Path:
    """Strict RFC 8259 JSON (JavaScript's JSON.parse and most CI tools refuse NaN / Infinity): see `strict`."""
    return write_text_atomic(path, json.dumps(strict(data), indent=2, sort_keys=True, default=str, allow_nan=False))


def strict(data: Any) -> Any:
    """`data` with every non-finite float written as null (what it was is said where it was decided: a check's
    failure line, a score error)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: strict(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict(v) for v in data]
    return data
