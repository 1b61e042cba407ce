"""The local fallback: encoded records in rotated JSONL files while Kafka is unreachable.

Files are ``spool-<n>.jsonl`` in one directory, ``n`` rising: records are appended to the newest
and read back from the oldest, so they are replayed in the order they were written (also by
the next process that opens the directory). A file that reaches ``file_bytes`` is closed and a
new one begun; when there are more than ``max_files``, the oldest is deleted and its unreplayed
lines counted as dropped: the spool never holds more than about ``file_bytes * max_files``.
Each line is one record as Kestrel reads it (so a spool file is also valid input for
``kestrel produce --file``). Thread-safe. One spool owns its directory: a second one (in
this process or another) refuses it (a lock file, ``.lock``), since two writers would delete
each other's files.

>>> import tempfile
>>> spool = Spool(tempfile.mkdtemp(), file_bytes=64, max_files=2)
>>> spool.append([b'{"n": 1}', b'{"n": 2}'])
0
>>> lines = spool.read(10); lines
[b'{"n": 1}', b'{"n": 2}']
>>> spool.commit(len(lines)); spool.pending()
0
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO

__all__ = ["Spool"]

_NAME = re.compile(r"spool-(\d+)\.jsonl")


class Spool:
    """Rotated JSONL files of records waiting for Kafka.

    Parameters
    ----------
    directory
        Where the files live (created if missing). Use one directory per publisher.
    file_bytes
        A file is closed for writing once it holds at least this many bytes.
    max_files
        At most this many files; beyond, the oldest is deleted (its records counted in
        :meth:`append`'s return value).
    """

    def __init__(self, directory: str | os.PathLike[str], file_bytes: int, max_files: int) -> None:
        if file_bytes < 1 or max_files < 1:
            raise ValueError("file_bytes and max_files: must be at least 1")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock(self.directory / ".lock")
        self.file_bytes = file_bytes
        self.max_files = max_files
        self._lock = threading.Lock()
        found = (_NAME.fullmatch(p.name) for p in self.directory.iterdir())
        self._files = sorted(int(m.group(1)) for m in found if m)
        self._writer: IO[bytes] | None = None
        self._writer_seq = -1
        self._read_pos = 0  # byte offset in the oldest file of what was replayed
        self._reading: tuple[int, int] | None = None  # (seq, end offset) handed out by read()
        self._pending = sum(self._count_lines(seq, 0) for seq in self._files)

    def _path(self, seq: int) -> Path:
        return self.directory / f"spool-{seq:08d}.jsonl"

    def _count_lines(self, seq: int, start: int) -> int:
        try:
            data = self._path(seq).read_bytes()[start:]
        except FileNotFoundError:
            return 0
        return sum(1 for line in data.split(b"\n") if line.strip())

    def pending(self) -> int:
        """Records written and not yet replayed (committed)."""
        with self._lock:
            return self._pending

    def files(self) -> list[Path]:
        """The spool's files, oldest first."""
        with self._lock:
            return [self._path(seq) for seq in self._files]

    def append(self, lines: Iterable[bytes]) -> int:
        """Write records (each without its newline); the number of older ones dropped to stay
        within ``max_files``."""
        dropped = 0
        with self._lock:
            for line in lines:
                writer = self._writer
                if writer is None:
                    seq = self._files[-1] + 1 if self._files else 1
                    self._files.append(seq)
                    writer = self._writer = self._path(seq).open("ab")
                    self._writer_seq = seq
                    dropped += self._bound()
                writer.write(line + b"\n")
                self._pending += 1
                if writer.tell() >= self.file_bytes:
                    self._close_writer()
            if self._writer is not None:
                self._writer.flush()
        return dropped

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._writer_seq = -1

    def _bound(self) -> int:
        dropped = 0
        while len(self._files) > self.max_files:
            oldest = self._files.pop(0)
            start = self._read_pos
            lost = self._count_lines(oldest, start)
            self._path(oldest).unlink(missing_ok=True)
            self._read_pos = 0
            self._reading = None
            self._pending -= lost
            dropped += lost
        return dropped

    def read(self, max_lines: int) -> list[bytes]:
        """Up to ``max_lines`` of the oldest unreplayed records, in order; :meth:`commit` them
        once Kafka has them (until then the next :meth:`read` returns them again)."""
        with self._lock:
            while self._files:
                seq = self._files[0]
                if seq == self._writer_seq:
                    self._close_writer()  # the oldest file is complete from now on
                try:
                    with self._path(seq).open("rb") as f:
                        f.seek(self._read_pos)
                        lines: list[bytes] = []
                        end = self._read_pos
                        for raw in f:
                            end += len(raw)
                            if raw.strip():
                                lines.append(raw.rstrip(b"\n"))
                            if len(lines) >= max_lines:
                                break
                except FileNotFoundError:
                    lines, end = [], self._read_pos
                if lines:
                    self._reading = (seq, end)
                    return lines
                self._files.pop(0)  # fully replayed
                self._path(seq).unlink(missing_ok=True)
                self._read_pos = 0
            return []

    def commit(self, count: int) -> None:
        """Mark the records of the last :meth:`read` (``count`` of them) as replayed."""
        with self._lock:
            if self._reading is None:
                return
            seq, end = self._reading
            self._reading = None
            if self._files and self._files[0] == seq:
                self._read_pos = end
                self._pending -= count
                if end >= self._path(seq).stat().st_size:
                    self._files.pop(0)
                    self._path(seq).unlink(missing_ok=True)
                    self._read_pos = 0

    def close(self) -> None:
        """Close the file being written and give up the directory (the records stay there for
        the next spool that opens it)."""
        with self._lock:
            self._close_writer()
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None


def _lock(path: Path) -> IO[bytes] | None:
    """Hold an exclusive lock on ``path`` (``None`` where :mod:`fcntl` does not exist).

    Raises
    ------
    RuntimeError
        If another spool holds it.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return None
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise RuntimeError(
            f"spool directory {path.parent} is in use by another publisher; give each process "
            "its own spool_dir"
        ) from None
    return handle
