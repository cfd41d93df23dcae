"""On-disk cache of trained models and finished job results, keyed by a hash of the config that
determines them and of the code versions of the components it names (``with_versions``). Files are written atomically; every checkpoint has a sha256 sidecar and is loaded
with ``weights_only=True``, so a truncated or altered file is detected (and recomputed), never used."""
from __future__ import annotations

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


class Cache:
    def __init__(self, root: str | Path, enabled: bool = True):
        self.root = Path(root)
        self.enabled = enabled

    def key(self, spec: Any) -> str:
        """Hash of the spec and of the versions of the components it names."""
        return stable_hash(with_versions(spec))

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / f"{key}{suffix}"

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
        path = self._path(kind, key, ".pt")
        buf = io.BytesIO()
        torch.save(state, buf)
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
