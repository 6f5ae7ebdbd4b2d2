"""Zip bombs stop here, before any spreadsheet parser opens a zip-based file (ASVS 12.1.2).

python-calamine has no bound of its own. Two checks, both before calamine sees the file:

1. The central directory: at most `max_zip_entries` entries, at most `max_unzipped_bytes`
   declared in total, and no entry larger than `zip_ratio_min_bytes` that inflates more
   than `max_zip_ratio` times (Apache POI refuses more than 100x).
2. The directory's sizes are the attacker's word (and Python 3.11 predates the zipfile fix
   for CVE-2024-0450, overlapping entries), so every entry is also inflated, counting the
   bytes, and the check stops at the first byte past a cap. zipfile itself stops at the
   declared size and then fails the CRC check if the data says otherwise.
"""

from __future__ import annotations

import copy
import zipfile

from pipeline.errors import ReadError
from pipeline.sheet import MIB, READ_BUFFER, ReadOptions
from pipeline.sniff import damaged

CHUNK = 1 * MIB


def _bomb(name: str, why: str) -> str:
    return (
        f"{name} was refused: {why}. That is how a zip bomb looks, not a normal spreadsheet. "
        "If the file is genuine, open it in your spreadsheet program, save it again "
        "(or save it as CSV) and pick the new file."
    )


def check_zip(path: str, name: str, options: ReadOptions) -> None:
    """Raise ReadError unless the zip at `path` is safe to hand to a parser."""
    cap = options.max_unzipped_bytes
    try:
        # A 4 MiB buffer: in the browser each read of the file is a slice of the File.
        with open(path, "rb", buffering=READ_BUFFER) as fh, zipfile.ZipFile(fh) as zf:
            infos = zf.infolist()
            if len(infos) > options.max_zip_entries:
                raise ReadError(
                    _bomb(
                        name,
                        f"it holds {len(infos):,} entries, more than the limit of "
                        f"{options.max_zip_entries:,}",
                    )
                )
            declared = sum(i.file_size for i in infos)
            if declared > cap:
                raise ReadError(
                    _bomb(
                        name,
                        f"it would unpack to {declared // MIB:,} MiB, more than the "
                        f"limit of {cap // MIB:,} MiB",
                    )
                )
            for info in infos:
                _check_ratio(name, info.filename, info.file_size, info.compress_size, options)
            total = 0
            for info in infos:
                total += _inflate_counting(zf, info, name, cap - total, options)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
        raise ReadError(damaged(name, "a zip-based spreadsheet (xlsx, ods)", str(exc))) from exc


def _check_ratio(name: str, entry: str, size: int, compressed: int, options: ReadOptions) -> None:
    if size > options.zip_ratio_min_bytes and size > options.max_zip_ratio * max(compressed, 1):
        raise ReadError(
            _bomb(
                name,
                f"its part {entry} inflates {size // max(compressed, 1):,} times, more "
                f"than the limit of {options.max_zip_ratio} times",
            )
        )


def _inflate_counting(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, budget: int, options: ReadOptions
) -> int:
    """Inflate one entry, discarding the bytes; stop at the first byte past any limit."""
    count = 0
    # Inflate past the declared size (zipfile would stop there): the real size counts.
    probe = copy.copy(info)
    probe.file_size = max(budget, 0) + 1
    with zf.open(probe) as stream:
        while chunk := stream.read(CHUNK):
            count += len(chunk)
            if count > budget:
                raise ReadError(
                    _bomb(
                        name,
                        f"it unpacks to more than the limit of "
                        f"{options.max_unzipped_bytes // MIB:,} MiB",
                    )
                )
            if count > info.file_size:
                raise ReadError(
                    _bomb(name, f"its part {info.filename} holds more than its directory says")
                )
            _check_ratio(name, info.filename, count, info.compress_size, options)
    return count
