"""Progress on long work: bars when stderr is a terminal, one plain line per event otherwise."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

from rich.console import Console

from repro_pipeline.cli.progress import progress_display
from repro_pipeline.engine.load.progress import TableProgress
from repro_pipeline.engine.source.catalog import TableName

INVOICES = TableName("public", "invoices")


def _events() -> list[TableProgress]:
    return [
        TableProgress(INVOICES, 0, 3000, 0.0, finished=False),
        TableProgress(INVOICES, 1500, 3000, 1.0, finished=False),
        TableProgress(INVOICES, 3000, 3000, 2.0, finished=True),
    ]


def _show(console: Console) -> None:
    with progress_display(console) as display:
        with display.step("closure of organization 451") as step:
            step.done("4242 rows")
        for event in _events():
            display.table(event)


def test_a_terminal_gets_bars_per_step_and_table() -> None:
    screen = io.StringIO()
    _show(Console(file=screen, force_terminal=True, width=120))
    shown = screen.getvalue()
    assert "\x1b[" in shown and "━" in shown  # drawn with escape codes and bar glyphs
    assert "closure of organization 451: 4242 rows (" in shown
    assert "public.invoices" in shown and "3000/3000" in shown


def test_anything_else_gets_plain_lines() -> None:
    log = io.StringIO()
    _show(Console(file=log, force_terminal=False, width=120))
    lines = log.getvalue().splitlines()
    assert lines[0] == "closure of organization 451..."
    assert lines[1].startswith("closure of organization 451: 4242 rows (")
    assert lines[2:] == [event.line() for event in _events()]
    assert "\x1b[" not in log.getvalue() and "━" not in log.getvalue()


def test_quiet_shows_nothing() -> None:
    screen = io.StringIO()
    with progress_display(Console(file=screen, force_terminal=True), quiet=True) as display:
        with display.step("closure"):
            pass
        display.table(_events()[0])
    assert screen.getvalue() == ""


def test_a_pseudo_terminal_gets_the_bar_from_the_command() -> None:
    """The CLI's own console, on a real pseudo-terminal: the bar, not the lines."""
    leader, follower = pty.openpty()
    script = (
        "from repro_pipeline.cli.progress import progress_display\n"
        "with progress_display() as display:\n"
        "    with display.step('closure of organization 451') as step:\n"
        "        step.done('7 rows')\n"
    )
    try:
        run = subprocess.run(
            [sys.executable, "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=follower,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
            timeout=60,
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the pty's other end is closed: all was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert run.returncode == 0
    text = shown.decode()
    assert "\x1b[" in text and "closure of organization 451: 7 rows (" in text
    assert "closure of organization 451...\n" not in text.replace("\r", "")


def test_a_run_progress_line_reads_back_as_the_table_progress_it_was() -> None:
    from repro_pipeline.cli.run_progress import parse_progress_line

    weird = TableProgress(TableName("billing", "line.items: 2"), 12345, 99999, 12.3, finished=False)
    too_quick_for_a_rate = TableProgress(TableName("public", "organizations"), 1, 1, 0.0, finished=True)
    for progress in [*_events(), weird, too_quick_for_a_rate]:
        read = parse_progress_line(progress.line())
        assert read is not None and read.seconds == progress.seconds  # shown to 0.01 s, as these are
        assert (read.table, read.rows, read.total_rows, read.finished) == (
            progress.table,
            progress.rows,
            progress.total_rows,
            progress.finished,
        )
    assert parse_progress_line("closure: 4242 rows") is None
