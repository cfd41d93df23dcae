"""Small shared helpers: seeding, device choice, atomic file writes, config hashing, progress bars."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) so a run is repeatable."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def machine_description() -> str:
    """One line naming this machine: OS, CPU model, core count, torch version, GPU (or "no GPU")."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, "
            f"torch {torch.__version__}, {gpu}")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; anything else is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file + rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a result file gets the umask's default
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_npz(path: str | os.PathLike, arrays: dict) -> None:
    """Save numpy arrays as a compressed .npz, atomically."""
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-serialisable object that does not depend on dict order."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class LineProgress:
    """Progress for a log file or a pipe: one plain line on stderr every ``interval`` seconds (done /
    total, elapsed, estimated time left), and a last line when the work took longer than that."""

    def __init__(self, total: int | None, desc: str, interval: float):
        self.total, self.desc, self.interval = total, desc, interval
        self.done, self.t0 = 0, time.monotonic()
        self.last = self.t0

    def _line(self, now: float) -> str:
        elapsed = now - self.t0
        if self.total:
            left = elapsed * (self.total - self.done) / self.done if self.done else float("nan")
            return (f"{self.desc}: {self.done}/{self.total} ({100 * self.done / self.total:.0f}%), "
                    f"{elapsed:.0f} s elapsed, about {left:.0f} s left")
        return f"{self.desc}: {self.done} done, {elapsed:.0f} s elapsed"

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            print(self._line(now), file=sys.stderr, flush=True)

    def close(self) -> None:
        now = time.monotonic()
        if now - self.t0 >= self.interval:
            print(self._line(now) + " (finished)", file=sys.stderr, flush=True)


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
             enabled: bool = True, leave: bool = False):
    """Progress of long work on stderr: a tqdm bar on a terminal; under a pipe or a log file a plain
    line every ROBEX_PROGRESS_INTERVAL seconds (default 30). ROBEX_PROGRESS=1 forces the bar,
    =0 silences both; ``enabled=False`` (config ``progress: false``) silences both too."""
    from tqdm.auto import tqdm

    forced = os.environ.get("ROBEX_PROGRESS")
    if enabled and forced is None and not sys.stderr.isatty() and iterable is None:
        return LineProgress(total, desc, float(os.environ.get("ROBEX_PROGRESS_INTERVAL", 30)))
    show = enabled and (sys.stderr.isatty() if forced is None else forced == "1")
    return tqdm(iterable, total=total, desc=desc, disable=not show, leave=leave,
                dynamic_ncols=True, mininterval=1.0)


def batches(n: int, size: int):
    """Yield slices covering range(n) in chunks of at most ``size``."""
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


FAILPOINTS = ("train_epoch", "job_result", "render")


def failpoint(name: str) -> None:
    """Fault injection for tests/test_faults.py: with ROBEX_FAILPOINT=<name> in the environment this
    process kills itself with SIGKILL (what ``kill -9`` does) on reaching the named point:
    ``train_epoch`` (an epoch of a training run finished, the model not yet cached), ``job_result``
    (a job's rows computed, not yet cached or written), ``render`` (a preset's metrics.csv written,
    its table or figure not yet). Does nothing otherwise."""
    if os.environ.get("ROBEX_FAILPOINT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
