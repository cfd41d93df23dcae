"""On-disk cache of trained models and finished job results, keyed by a hash of the config that
determines them and of the code versions of the components it names (``with_versions``). Files are
written atomically; every checkpoint has a sha256 sidecar and is loaded with ``weights_only=True``,
so a truncated or altered file is detected (and recomputed), never used.

Jobs running at once (a joblib or submitit launcher, two sweeps on one machine or on a cluster's
shared disk) share the cache safely: :meth:`Cache.lock` is a per-entry file lock (the ``filelock``
package, an OS ``flock``) held around load-or-compute-and-save, so the second job that needs an
entry waits for the first and then loads it instead of computing it again. The OS releases the lock
when its process dies, so a job killed with SIGKILL never blocks the next run (the lock file stays,
unlocked). Network file systems need working ``flock`` (most cluster file systems have it)."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import torch

from robex.utils import atomic_write_bytes, atomic_write_npz, atomic_write_text, file_sha256, stable_hash

log = logging.getLogger(__name__)


def component_version(target: str) -> int:
    """The ``version`` attribute of the class or function a ``_target_`` names (1 if it has none).
    Bump a component's ``version`` whenever a change alters the numbers it computes: every cached
    model and job that used it is then recomputed instead of reused."""
    from hydra.utils import get_object

    try:
        obj = get_object(target)
    except Exception as exc:  # an unknown target is a config error, reported at instantiate time
        raise ValueError(f"cache key: cannot import _target_ {target!r} ({exc})") from exc
    return int(getattr(obj, "version", 1))


def with_versions(spec: Any) -> Any:
    """A copy of ``spec`` in which every mapping with a ``_target_`` also records that component's
    code version under ``_version`` (nested components too: an aggregate's members, ...)."""
    if isinstance(spec, dict):
        out = {k: with_versions(v) for k, v in spec.items()}
        if isinstance(spec.get("_target_"), str):
            out["_version"] = component_version(spec["_target_"])
        return out
    if isinstance(spec, (list, tuple)):
        return [with_versions(v) for v in spec]
    return spec


def _on_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return type(obj)((k, _on_cpu(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_on_cpu(v) for v in obj)
    return obj


class Cache:
    def __init__(self, root: str | Path, enabled: bool = True):
        self.root = Path(root)
        self.enabled = enabled

    def key(self, spec: Any) -> str:
        """Hash of the spec and of the versions of the components it names."""
        return stable_hash(with_versions(spec))

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / f"{key}{suffix}"

    @contextlib.contextmanager
    def lock(self, kind: str, key: str, what: str = ""):
        """Hold the file lock of one cache entry (``<root>/locks/<kind>-<key>.lock``) for the
        block; logs once when another job holds it. A no-op when the cache is disabled (nothing is
        shared then). Locks are taken in one order (job, defended stage k, stage k-1, ..., trained
        model), so two jobs never wait on each other."""
        if not self.enabled:
            yield
            return
        from filelock import FileLock, Timeout

        path = self.root / "locks" / f"{kind}-{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("waiting for another job to finish %s (%s)", what or f"{kind}/{key}", path)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    # -- model checkpoints -------------------------------------------------------------------
    def load_state(self, kind: str, key: str) -> dict | None:
        """The cached checkpoint dict, or None if absent or corrupted (a corrupted file is removed)."""
        if not self.enabled:
            return None
        path = self._path(kind, key, ".pt")
        sidecar = path.with_suffix(".pt.sha256")
        if not path.exists():
            return None
        try:
            if not sidecar.exists() or sidecar.read_text().strip() != file_sha256(path):
                raise ValueError("sha256 mismatch")
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupted, truncated, foreign pickle, ...
            log.warning("cached %s %s is corrupted (%s): removed, recomputing", kind, path.name, exc)
            path.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
            return None

    def save_state(self, kind: str, key: str, state: dict) -> Path:
        """Save a checkpoint dict with every tensor on the CPU (device-neutral: a model trained on a
        GPU loads on a CPU-only machine and gives the same file as the CPU would)."""
        path = self._path(kind, key, ".pt")
        buf = io.BytesIO()
        torch.save(_on_cpu(state), buf)
        data = buf.getvalue()
        atomic_write_bytes(path, data)
        atomic_write_text(path.with_suffix(".pt.sha256"), hashlib.sha256(data).hexdigest())
        return path

    # -- finished job results ---------------------------------------------------------------
    def load_json(self, kind: str, key: str) -> Any | None:
        if not self.enabled:
            return None
        path = self._path(kind, key, ".json")
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, OSError) as exc:
            log.warning("cached result %s unreadable (%s): recomputing", path.name, exc)
            path.unlink(missing_ok=True)
            return None

    def save_json(self, kind: str, key: str, obj: Any) -> None:
        atomic_write_text(self._path(kind, key, ".json"), json.dumps(obj))

    # -- arrays that go with a job (figure data) -------------------------------------------------
    def save_arrays(self, kind: str, key: str, arrays: dict) -> None:
        atomic_write_npz(self._path(kind, key, ".npz"), arrays)

    def load_arrays(self, kind: str, key: str) -> dict | None:
        import numpy as np

        path = self._path(kind, key, ".npz")
        if not self.enabled or not path.exists():
            return None
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        except Exception as exc:
            log.warning("cached arrays %s unreadable (%s): recomputing", path.name, exc)
            path.unlink(missing_ok=True)
            return None
