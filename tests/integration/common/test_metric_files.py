"""The metric files of ended worker processes fold into archive files: the totals a scrape
reads stay, the files go, and a scrape never reads a fold half done."""

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from apps.common.metric_files import archive_ended_processes
from tests.metrics import collected, record_in_a_process


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def _without_pids(samples, pids):
    """`samples` but the series of the `all` gauge of `pids` (its `liveall` ones go with
    prometheus_client's `mark_process_dead`, which gunicorn's child_exit calls)."""
    return {
        key: value
        for key, value in samples.items()
        if not (key[0] == "jobs_all" and key[1] in [(("pid", str(pid)),) for pid in pids])
    }


def test_ended_processes_leave_their_totals_and_no_files(tmp_path):
    first, second, third = (record_in_a_process(tmp_path, amount) for amount in (1, 2, 3))
    before = collected(tmp_path)

    assert archive_ended_processes(tmp_path, [third]) == {}
    assert archive_ended_processes(tmp_path, [second]) == {}  # into the archive that exists

    after = collected(tmp_path)
    assert after == _without_pids(before, [second, third])
    assert after[("jobs_total", (("queue", "a"),))] == 6
    assert after[("job_seconds_bucket", (("le", "1.5"),))] == 1  # cumulative, as before
    assert after[("job_seconds_bucket", (("le", "2.5"),))] == 2
    assert after[("job_seconds_bucket", (("le", "+Inf"),))] == 3
    assert after[("job_seconds_sum", ())] == 6
    assert after[("job_size_count", ())] == 3
    assert after[("jobs_sum", ())] == 6
    assert after[("jobs_max", ())] == 3
    assert after[("jobs_min", ())] == 1
    assert after[("jobs_mostrecent", ())] == 3  # the third wrote last, then the second folded
    assert ("jobs_all", (("pid", str(first)),)) in after  # a live process's stays
    assert _files(tmp_path) == sorted(
        [
            *(f"{kind}_archive.db" for kind in ("counter", "histogram", "summary")),
            *(f"gauge_{mode}_archive.db" for mode in ("sum", "max", "min", "mostrecent")),
            *(f"{kind}_{first}.db" for kind in ("counter", "histogram", "summary")),
            *(f"gauge_{mode}_{first}.db" for mode in ("sum", "max", "min", "mostrecent")),
            f"gauge_all_{first}.db",
            f"gauge_liveall_{first}.db",  # prometheus_client's mark_process_dead's
            f"gauge_liveall_{second}.db",
            f"gauge_liveall_{third}.db",
        ]
    )


def test_the_smallest_of_the_ended_processes_gauges_is_kept_in_the_archive(tmp_path):
    record_in_a_process(tmp_path, 5)  # alive: its own minimum is the largest
    larger, smaller = record_in_a_process(tmp_path, 2), record_in_a_process(tmp_path, 1)
    assert archive_ended_processes(tmp_path, [larger]) == {}
    assert archive_ended_processes(tmp_path, [smaller]) == {}  # folds into the archive's 2
    after = collected(tmp_path)
    assert after[("jobs_min", ())] == 1
    assert after[("jobs_max", ())] == 5


def test_archiving_a_process_again_counts_nothing_twice(tmp_path):
    ended = record_in_a_process(tmp_path, 2)
    record_in_a_process(tmp_path, 1)
    assert archive_ended_processes(tmp_path, [ended]) == {}
    once = collected(tmp_path)
    assert archive_ended_processes(tmp_path, [ended]) == {}
    assert collected(tmp_path) == once
    assert once[("jobs_total", (("queue", "a"),))] == 3


def test_files_that_cannot_be_archived_stay_and_are_archived_on_a_retry(tmp_path):
    failing, other = record_in_a_process(tmp_path, 2), record_in_a_process(tmp_path, 5)
    counts = (tmp_path / f"counter_{failing}.db").read_bytes()
    (tmp_path / "counter_archive.db").mkdir()  # an archive that cannot be read

    failed = archive_ended_processes(tmp_path, [failing])

    assert list(failed) == [failing]
    assert isinstance(failed[failing], IsADirectoryError)
    assert (tmp_path / f"counter_{failing}.db").read_bytes() == counts  # nothing lost
    assert not [name for name in _files(tmp_path) if name.endswith(".tmp")]
    (tmp_path / "counter_archive.db").rmdir()
    assert archive_ended_processes(tmp_path, [failing, other]) == {}
    assert collected(tmp_path)[("jobs_total", (("queue", "a"),))] == 7
    assert collected(tmp_path)[("job_size_sum", ())] == 7


def test_a_file_folded_but_not_removed_is_not_folded_again(tmp_path, monkeypatch):
    """The removal of a folded file fails (the archive already holds its counts): neither a
    scrape meanwhile nor the retry counts them twice."""
    ended = record_in_a_process(tmp_path, 2)
    record_in_a_process(tmp_path, 5)  # a live process
    unlink = Path.unlink
    failures = []

    def unlink_failing_once(path, missing_ok=False):
        if path.name.startswith(f"counter_{ended}.db") and path.exists() and not failures:
            failures.append(path.name)
            raise PermissionError(13, "Permission denied", str(path))
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink_failing_once)

    failed = archive_ended_processes(tmp_path, [ended])

    assert list(failed) == [ended]
    assert len(failures) == 1
    assert collected(tmp_path)[("jobs_total", (("queue", "a"),))] == 7
    assert archive_ended_processes(tmp_path, [ended]) == {}
    assert collected(tmp_path)[("jobs_total", (("queue", "a"),))] == 7
    assert collected(tmp_path)[("job_size_sum", ())] == 7
    assert not [name for name in _files(tmp_path) if f"_{ended}." in name and "live" not in name]


def test_a_file_whose_archive_cannot_be_replaced_is_put_back_for_scrapes(tmp_path, monkeypatch):
    """The archive's replacement fails after the file was renamed aside: the file is put
    back, so scrapes still count it, and a retry folds it once."""
    ended = record_in_a_process(tmp_path, 2)
    record_in_a_process(tmp_path, 5)  # a live process
    replace = os.replace

    def replace_failing_on_the_archive(source, destination):
        if Path(destination).name == "counter_archive.db":
            raise PermissionError(13, "Permission denied", str(destination))
        replace(source, destination)

    monkeypatch.setattr(os, "replace", replace_failing_on_the_archive)
    failed = archive_ended_processes(tmp_path, [ended])
    monkeypatch.undo()

    assert list(failed) == [ended]
    assert (tmp_path / f"counter_{ended}.db").exists()
    assert collected(tmp_path)[("jobs_total", (("queue", "a"),))] == 7
    assert archive_ended_processes(tmp_path, [ended]) == {}
    assert collected(tmp_path)[("jobs_total", (("queue", "a"),))] == 7


@pytest.mark.parametrize("cut", ["ended", "archive"])
def test_a_file_cut_short_is_set_aside_and_the_others_fold(tmp_path, cut):
    """A worker killed while it grew its file leaves one prometheus_client cannot read
    (`struct.error`): it broke every scrape, and failed every fold (out of gunicorn's
    child_exit, it stopped the master). It is renamed aside, which no scrape reads."""
    first, second = record_in_a_process(tmp_path, 2), record_in_a_process(tmp_path, 5)
    assert archive_ended_processes(tmp_path, [first]) == {}
    damaged = tmp_path / (f"counter_{second}.db" if cut == "ended" else "counter_archive.db")
    damaged.write_bytes(damaged.read_bytes()[:2])
    aside = []

    failed = archive_ended_processes(
        tmp_path, [second], set_aside=lambda path, error: aside.append((path, type(error)))
    )

    assert failed == {}
    assert [path for path, _ in aside] == [damaged]
    assert (tmp_path / f"{damaged.name}.unreadable").exists()
    assert not (tmp_path / f"counter_{second}.db").exists()
    totals = collected(tmp_path)  # a scrape reads what is left
    lost = 5 if cut == "ended" else 2
    assert totals[("jobs_total", (("queue", "a"),))] == 7 - lost
    assert totals[("job_size_sum", ())] == 7  # the other kinds folded whole


def test_a_fold_waits_for_a_scrape_and_gives_up_after_its_deadline(tmp_path):
    ended = record_in_a_process(tmp_path, 1)
    files = _files(tmp_path)
    scrape = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(scrape, fcntl.LOCK_SH)  # what a scrape holds while it reads the files
        failed = archive_ended_processes(tmp_path, [ended], lock_wait_seconds=0)
    finally:
        os.close(scrape)
    assert list(failed) == [ended]
    assert isinstance(failed[ended], TimeoutError)
    assert _files(tmp_path) == files
    assert archive_ended_processes(tmp_path, [ended], lock_wait_seconds=0) == {}


def _waiting_for_a_lock(directory: Path) -> bool:
    """Whether a process waits for a flock on `directory` (/proc/locks marks it `->`)."""
    inode = f":{directory.stat().st_ino} "
    return any(
        "->" in line and inode in line for line in Path("/proc/locks").read_text().splitlines()
    )


def test_metrics_are_read_while_no_fold_runs(tmp_path, monkeypatch):
    """A fold replaces an archive, then removes the worker's file: read in between, both would
    count the same values (or the file would vanish between listing and reading: a 500)."""
    from apps.common.metrics import exposition

    record_in_a_process(tmp_path, 4)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    pages = []
    fold = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(fold, fcntl.LOCK_EX)  # what the master holds while it folds
        scrape = threading.Thread(target=lambda: pages.append(exposition()))
        scrape.start()
        deadline = time.monotonic() + 10
        while not _waiting_for_a_lock(tmp_path):
            assert scrape.is_alive(), "the page was read while a fold held the directory"
            assert time.monotonic() < deadline, "the scrape never waited for the fold"
            time.sleep(0.01)
        assert pages == []
    finally:
        os.close(fold)
    scrape.join(timeout=10)
    [page] = pages
    assert b'jobs_total{queue="a"} 4.0' in page


@pytest.mark.parametrize("wait", [0, 0.05])
def test_a_fold_of_nothing_leaves_the_directory_as_it_was(tmp_path, wait):
    live = record_in_a_process(tmp_path, 1)
    files = _files(tmp_path)
    assert archive_ended_processes(tmp_path, [live + 1_000_000], lock_wait_seconds=wait) == {}
    assert _files(tmp_path) == files
