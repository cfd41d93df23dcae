"""Reader and writer for the IDX format of (Fashion-)MNIST, gzipped or not."""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from robex.errors import RobexError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _bad(path: Path, problem: str) -> RobexError:
    return RobexError(f"{path} {problem}: replace it with an intact copy (re-download it, or "
                      f"reinstall the package it came from)")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a numpy array of its declared shape. A damaged file
    (broken or truncated gzip stream, bad header, wrong length) is a RobexError naming the file."""
    path = Path(path)
    try:
        with _open(path) as fh:
            data = fh.read()
    except (EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise _bad(path, f"cannot be read ({type(exc).__name__}: {exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise _bad(path, "is not an IDX file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _DTYPES:
        raise _bad(path, f"is not an IDX file (unknown data type 0x{code:02x})")
    if len(data) < 4 + 4 * ndim:
        raise _bad(path, "is truncated (incomplete header)")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(_DTYPES[code])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != expected:
        raise _bad(path, f"is truncated or damaged ({len(body)} of {expected} data bytes)")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz). Used by tests."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as fh:
        fh.write(header + array.tobytes())
