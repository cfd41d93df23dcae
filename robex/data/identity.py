"""The identity of a data set's files, part of every cache key that depends on the data.

A path says where data was, not what it was: pointing ``dataset.root`` at other files with a warm
cache must never return the old numbers. Each loader declares the files it reads through a
``locate(**dataset_params) -> list[Path]`` function attached to it (``loader.locate``); their
fingerprint (size and a hash of the first and last MiB of each file, and its name) goes into the key.
Folders of many images (ImageNet, annotation benchmarks) are fingerprinted by every file's
relative path and size."""
from __future__ import annotations

import hashlib
import inspect
from functools import lru_cache
from pathlib import Path

from hydra.utils import get_method

from robex.errors import RobexError

BLOCK = 1 << 20


@lru_cache(maxsize=256)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(BLOCK))
        if size > 2 * BLOCK:
            f.seek(size - BLOCK)
        h.update(f.read(BLOCK))
    return h.hexdigest()[:16]


def fingerprint(paths: list[Path]) -> list[str]:
    """``name:size:digest`` for every file; a folder contributes its files' relative paths and sizes."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            h = hashlib.sha256()
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                h.update(f"{f.relative_to(p)}:{f.stat().st_size}\n".encode())
            out.append(f"{p.name}/:{h.hexdigest()[:16]}")
        elif p.is_file():
            st = p.stat()
            out.append(f"{p.name}:{st.st_size}:{_file_digest(str(p), st.st_size, st.st_mtime_ns)}")
        else:
            out.append(f"{p.name}:absent")
    return out


def data_identity(dataset_cfg) -> list[str]:
    """The fingerprint of the files the dataset's loader will read (see the module docstring)."""
    target = dataset_cfg.get("_target_")
    loader = get_method(target)
    locate = getattr(loader, "locate", None)
    if locate is None:
        raise RobexError(f"data loader {target} declares no locate() for its files: the cache could "
                         f"not tell its data apart (add one, see robex/data/identity.py)")
    wanted = inspect.signature(locate).parameters
    params = {k: v for k, v in dict(dataset_cfg).items() if k in wanted}
    return fingerprint(locate(**params))
