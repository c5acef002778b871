"""check_task.py --tail's line marking (toolkit.tail.StreamLines) at its edges: the program's bytes are kept
while only one stream has output, and a mark always starts a line."""

from toolkit.tail import StreamLines


def test_a_last_line_without_its_end_stays_as_the_program_wrote_it_while_unmarked():
    lines = StreamLines()
    assert lines.feed("stdout.txt", b"pi ~= 3.14\nno newline") == b"pi ~= 3.14\n"
    assert lines.finish() == b"no newline"  # `--tail > file` holds exactly stdout.txt's bytes
    assert lines.finish() == b""  # flushed once


def test_a_carriage_return_does_not_start_a_marked_line():
    lines = StreamLines()
    lines.feed("stdout.txt", b"starting\n")
    printed = lines.feed("stderr.txt", b"10%\r50%\r100%\nTraceback\r\n")
    assert printed == b"stderr| 10%\r50%\r100%\nstderr| Traceback\r\n"


def test_the_last_lines_of_both_streams_are_ended_and_marked_when_marked():
    lines = StreamLines()
    assert lines.feed("stdout.txt", b"rank 0 wai") == b""
    assert lines.feed("stderr.txt", b"RuntimeError: bo") == b""
    assert lines.marked  # both have had output, even if no line is complete yet
    assert lines.feed("stdout.txt", b"ts\n") == b"stdout| rank 0 waits\n"
    assert lines.finish() == b"stderr| RuntimeError: bo\n"
