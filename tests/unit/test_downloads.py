"""check_task.py's downloads: atomic, cancellable, and clear about a full disk (no network)."""

import errno
import threading

import pytest

from toolkit.cli import run
from toolkit.errors import ExitStatus
from toolkit.outputs import DownloadCancelled, write_atomically


def test_complete_download_replaces_the_target(tmp_path):
    target = tmp_path / "job" / "task" / "stdout.txt"
    write_atomically(target, iter([b"pi ", b"~= 3.14"]), threading.Event())
    assert target.read_bytes() == b"pi ~= 3.14"
    assert [p.name for p in target.parent.iterdir()] == ["stdout.txt"]


def disk_full_after_first_chunk():
    yield b"first part"
    raise OSError(errno.ENOSPC, "No space left on device", "outputs/j/t/stdout.txt")


def test_disk_full_leaves_neither_partial_nor_corrupt_file(tmp_path):
    target = tmp_path / "stdout.txt"
    target.write_bytes(b"older complete copy")
    with pytest.raises(OSError):
        write_atomically(target, disk_full_after_first_chunk(), threading.Event())
    assert target.read_bytes() == b"older complete copy"
    assert [p.name for p in tmp_path.iterdir()] == ["stdout.txt"]


def test_disk_full_is_one_line_and_exit_1(tmp_path, capsys):
    def body(_settings):
        write_atomically(tmp_path / "stdout.txt", disk_full_after_first_chunk(), threading.Event())
    assert run(body) == ExitStatus.FAILED
    err = capsys.readouterr().err
    assert "Cannot write outputs/j/t/stdout.txt: No space left on device" in err and err.count("\n") == 1


def test_cancelled_download_stops_and_cleans_up(tmp_path):
    cancelled = threading.Event()

    def chunks():
        yield b"some"
        cancelled.set()  # e.g. Ctrl-C, or another file's download failed
        yield b"more"
    with pytest.raises(DownloadCancelled):
        write_atomically(tmp_path / "stderr.txt", chunks(), cancelled)
    assert list(tmp_path.iterdir()) == []


def test_download_gets_the_mode_of_the_users_umask_not_mkstemps(tmp_path):
    from toolkit.outputs import FILE_MODE, user_file_mode

    target = tmp_path / "stdout.txt"
    write_atomically(target, iter([b"x"]), threading.Event())
    assert target.stat().st_mode & 0o777 == FILE_MODE == user_file_mode()


def test_a_fetched_file_says_where_it_came_from_and_whether_it_was_downloaded_now():
    from toolkit.outputs import Fetched, Source

    refused = " (the blob container cannot be reached)"
    assert Fetched(Source.NODE, 12, refused).how == "from the node (the blob container cannot be reached)"
    assert Fetched(Source.NODE, 12, refused).origin() == Fetched(Source.NODE, 7, refused).origin()
    assert [source for source in Source if source.downloaded_now] == [Source.BLOB_CONTAINER, Source.NODE]
