"""The Prometheus files of processes that ended, folded into one archive file per kind.

In prometheus_client's multiprocess mode each process writes its own files in
PROMETHEUS_MULTIPROC_DIR (`counter_<pid>.db`, `histogram_<pid>.db`, ...) and every scrape reads
them all. The files of ended workers were kept for good: with workers recycled
(GUNICORN_MAX_REQUESTS, reloads) a scrape read ever more of them, about 1 ms each. gunicorn's
master folds an ended worker's values into `<kind>_archive.db` (which the collector reads as one
more process) and removes its files, so the totals stay and the files are bounded.

A fold and a scrape exclude each other (a lock on the directory): a scrape never sees the
archive and the worker's file both counting the same values, nor a file gone between listing
the directory and reading it. Workers write their own files without the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client.core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

Entry = tuple[float, float]  # a series' value and timestamp, as a file holds them
# What prometheus_client raises reading a file cut short or garbled (a worker killed while it
# grew the file): `struct.error`, or a ValueError (UnicodeDecodeError is one) for a bad key.
_UNREADABLE = (struct.error, ValueError)
SetAside = Callable[[Path, Exception], None]


def _added(held: Entry, ended: Entry) -> Entry:
    return held[0] + ended[0], max(held[1], ended[1])


def _larger(held: Entry, ended: Entry) -> Entry:
    return ended if ended[0] > held[0] else held


def _smaller(held: Entry, ended: Entry) -> Entry:
    return ended if ended[0] < held[0] else held


def _later(held: Entry, ended: Entry) -> Entry:
    return ended if ended[1] > held[1] else held


# How an ended process's value of a series joins the archive's, by file kind: what the
# collector does across processes, so the scrape answers the same. The gauges of these modes
# count dead processes by definition (prometheus_client: "alive or dead").
_FOLDED: dict[str, Callable[[Entry, Entry], Entry]] = {
    "counter": _added,
    "histogram": _added,  # each bucket's own count (not cumulative), `_sum` and `_count`
    "summary": _added,
    "gauge_sum": _added,
    "gauge_max": _larger,
    "gauge_min": _smaller,
    "gauge_mostrecent": _later,
}
# `all` gauges report one series per pid: a dead worker's is a stale value, not a count, and
# goes with its process. The `live*` ones are prometheus_client's `mark_process_dead`'s.
_DROPPED = ("gauge_all",)
ARCHIVE = "archive"  # in place of the pid: `counter_archive.db`


def archive_ended_processes(
    directory: str | os.PathLike[str],
    pids: Iterable[int],
    *,
    lock_wait_seconds: float = 2.0,
    set_aside: SetAside | None = None,
) -> dict[int, OSError]:
    """Fold the files of the ended processes `pids` into the archives, then remove them.

    Returns the pids not archived, each with its error (TimeoutError: scrapes held the
    directory past `lock_wait_seconds`); their files stay, read by scrapes as before. A file
    that cannot be read (cut short) is renamed `<name>.unreadable`, which no scrape reads (it
    broke every scrape, and a fold would fail on it for ever), and `set_aside` is told: its
    counts are lost, as they were already to every scrape.
    """
    pids = list(pids)
    failed: dict[int, OSError] = {}
    try:
        with _locked(Path(directory), fcntl.LOCK_EX, lock_wait_seconds):
            for pid in pids:
                try:
                    _archive(Path(directory), pid, set_aside or _ignored)
                except OSError as error:
                    failed[pid] = error
    except OSError as error:  # the lock: nothing was folded
        return dict.fromkeys(pids, error)
    return failed


class ArchivingMultiProcessCollector:
    """prometheus_client's collector of every process's files, read while no fold runs."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._directory = Path(directory)

    def collect(self) -> Iterable[Metric]:
        with _locked(self._directory, fcntl.LOCK_SH, wait_seconds=None):
            return MultiProcessCollector(None, str(self._directory)).collect()


def _archive(directory: Path, pid: int, set_aside: SetAside) -> None:
    """One process's files, kind by kind. A file is renamed aside (`<name>.folding`, which no
    scrape reads) just before its archive is replaced, and put back if that fails: the counts
    are either in the archive or in the file a scrape reads, never lost and never in both. A
    `.folding` file left by a removal that failed holds counts already in the archive, so a
    retry removes it and folds nothing twice. (A master that dies in between leaves it, but
    the next master starts with an empty directory.)"""
    for kind in _DROPPED:
        (directory / f"{kind}_{pid}.db").unlink(missing_ok=True)
    for kind, combine in _FOLDED.items():
        ended = directory / f"{kind}_{pid}.db"
        folding = directory / f"{ended.name}.folding"
        folding.unlink(missing_ok=True)  # folded already, its removal failed
        if not ended.exists():
            continue
        archive = directory / f"{kind}_{ARCHIVE}.db"
        taken = _readable(ended, set_aside)
        if taken is None:  # set aside
            continue
        held = (_readable(archive, set_aside) or {}) if archive.exists() else {}
        for key, entry in taken.items():
            held[key] = combine(held[key], entry) if key in held else entry
        os.replace(ended, folding)
        try:
            _replace(archive, held)
        except BaseException:
            os.replace(folding, ended)
            raise
        folding.unlink()


def _readable(path: Path, set_aside: SetAside) -> dict[str, Entry] | None:
    """The file's series, or None once a file that cannot be read is renamed aside."""
    try:
        return dict(_entries(path))
    except _UNREADABLE as error:
        os.replace(path, path.with_name(f"{path.name}.unreadable"))
        set_aside(path, error)
        return None


def _ignored(path: Path, error: Exception) -> None:
    pass


def _entries(path: Path) -> Iterator[tuple[str, Entry]]:
    for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(path)):
        yield key, (value, timestamp)


def _replace(path: Path, entries: dict[str, Entry]) -> None:
    """Write `entries` to a new file beside `path` (no `.db` name: no scrape reads it), then
    put it in the place of `path` at once."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        written = MmapedDict(temporary)
        try:
            for key, (value, timestamp) in entries.items():
                written.write_value(key, value, timestamp)
        finally:
            written.close()
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(directory: Path, operation: int, wait_seconds: float | None) -> Iterator[None]:
    """The directory's lock (flock on the directory itself: no file of its own). With
    `wait_seconds` it is polled, and TimeoutError raised once that passes: gunicorn's master
    must not hang on a scrape."""
    handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if wait_seconds is None:
            fcntl.flock(handle, operation)
        else:
            deadline = time.monotonic() + wait_seconds
            while True:
                try:
                    fcntl.flock(handle, operation | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(f"{directory} is being scraped") from None
                    time.sleep(0.01)
        yield
    finally:
        os.close(handle)  # releases the lock
