"""Tables made to fit (cli/tables.py): ids and numbers whole, text wrapped, the least
important columns left out first and named, and nothing cut when even the rest is wider."""

from __future__ import annotations

import io

from rich.console import Console

from p2engine.cli.tables import Col, fit, moment

LONG_ID = "rollout-a-rollout-named-at-length-0123456789abcdef0123456789"


def render(width: int, columns: list[Col], rows: list[list[str]]) -> tuple[str, list[str]]:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    fitted = fit(console, "t", columns, rows)
    fitted.print(console)
    return out.getvalue(), fitted.left_out


def test_ids_and_numbers_stay_whole_and_the_least_important_columns_go_first() -> None:
    columns = [Col("id"), Col("arms", "number"), Col("name", drop=2), Col("started", drop=1)]
    rows = [[LONG_ID, "400", "demo-with-a-name", "2026-12-05 20:31:30"]]
    text, left_out = render(80, columns, rows)
    assert left_out == ["name", "started"]  # the highest `drop` went first
    assert LONG_ID in text and " 400 " in text and "…" not in text
    assert "not shown at this width: name, started (--json has every column)" in text
    assert max(len(line) for line in text.splitlines()) <= 80

    wide, none_left_out = render(140, columns, rows)
    assert none_left_out == [] and "2026-12-05 20:31:30" in wide and "not shown" not in wide


def test_text_wraps_into_what_is_left_and_keys_beside_it_stay_whole() -> None:
    columns = [Col("transfer id"), Col("amount", "number"), Col("reason", "text")]
    transfer = "user:a-transfer-named-at-length-0123456789"
    rows = [[transfer, "12.34", "a reason long enough to need wrapping " * 3]]
    text, left_out = render(80, columns, rows)
    assert left_out == [] and transfer in text and "12.34" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert sum("reason long" in line or "wrapping" in line for line in text.splitlines()) > 1


def test_a_table_whose_essentials_are_wider_than_the_terminal_is_printed_whole() -> None:
    columns = [Col("a"), Col("b"), Col("c", drop=1)]
    rows = [[LONG_ID, LONG_ID, "x"]]
    text, left_out = render(80, columns, rows)
    assert left_out == ["c"]
    assert text.count(LONG_ID) == 2 and "…" not in text
    assert max(len(line) for line in text.splitlines()) > 80  # the terminal wraps, nothing is cut


def test_a_text_column_with_nothing_in_it_takes_no_room_and_is_not_called_left_out() -> None:
    columns = [Col("arm"), Col("config", drop=1), Col("error", "text")]
    rows = [[LONG_ID, "0123456789abcdef", ""], [LONG_ID, "fedcba9876543210", ""]]
    text, left_out = render(90, columns, rows)
    assert left_out == [] and "error" not in text and "0123456789abcdef" in text
    with_error, _ = render(90, columns, [*rows, [LONG_ID, "00", "boom"]])
    assert "error" in with_error and "boom" in with_error


def test_times_are_shown_to_the_second() -> None:
    assert moment("2026-12-05T20:31:30.123456+00:00") == "2026-12-05 20:31:30"
    assert moment(None) == ""
