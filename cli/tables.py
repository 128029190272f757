"""Tables that fit the terminal without cutting what they are read for.

An id, a name or a number is shown whole, never ended with "…" and never folded mid-word:
its column is as wide as its widest cell. Free text (a reason, an error, a preview) wraps
into the width left. When even that does not fit, the columns a table ranks least
important are left out, one at a time, and a line under the table names them (`--json`
has every column). A table whose essential columns alone are wider than the terminal is
printed at their width, and the terminal wraps its lines: nothing is cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, JustifyMethod, RenderableType
from rich.segment import Segment, Segments
from rich.table import Table
from rich.text import Text

Kind = Literal["key", "number", "text"]
TEXT_MIN = 12  # the narrowest a wrapping column gets


@dataclass(frozen=True)
class Col:
    """One column: `key` (ids, names, times) and `number` cells are shown whole, `text`
    wraps. `drop` ranks what goes first when the table is too wide: 0 never goes, higher
    goes sooner."""

    header: str
    kind: Kind = "key"
    drop: int = 0


Cell = str | Text


def _width(cell: Cell) -> int:
    text = cell.plain if isinstance(cell, Text) else cell
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _least_widths(columns: Sequence[Col], rows: Sequence[Sequence[Cell]]) -> list[int]:
    """Each column's narrowest: a whole cell for keys and numbers, TEXT_MIN for text."""
    return [
        TEXT_MIN
        if col.kind == "text"
        else max([cell_len(col.header), *(_width(row[i]) for row in rows)])
        for i, col in enumerate(columns)
    ]


def _needed(widths: Sequence[int]) -> int:
    """The table's narrowest: its columns, one space of padding either side of each, a
    divider between two, and the edge either side (box.SIMPLE_HEAD draws them as spaces)."""
    return sum(w + 2 for w in widths) + max(0, len(widths) - 1) + 2


def _build(
    title: str | None, columns: Sequence[Col], rows: Sequence[Sequence[Cell]], widths: list[int]
) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    for col, width in zip(columns, widths, strict=True):
        if col.kind == "text":
            table.add_column(col.header, overflow="fold", min_width=width)
        else:
            justify: JustifyMethod = "right" if col.kind == "number" else "left"
            table.add_column(col.header, justify=justify, no_wrap=True, min_width=width)
    for row in rows:
        table.add_row(*row)
    return table


@dataclass(frozen=True)
class Fitted:
    """A table made to fit, what it left out, and the width to print it at."""

    table: Table
    left_out: list[str]
    width: int | None  # wider than the terminal: its essential columns' width

    def renderable(self) -> RenderableType:
        if not self.left_out:
            return self.table
        note = Text(
            f"not shown at this width: {', '.join(self.left_out)} (--json has every column)",
            style="dim",
        )
        return Group(self.table, note)

    def print(self, console: Console) -> None:
        if self.width is None:
            console.print(self.renderable())
            return
        # Wider than the terminal: rendered at its own width, each line printed uncropped.
        options = console.options.update_width(self.width)
        for line in console.render_lines(self.renderable(), options, pad=False):
            console.print(Segments([*line, Segment.line()]), crop=False, soft_wrap=True, end="")


def fit(
    console: Console,
    title: str | None,
    columns: Sequence[Col],
    rows: Sequence[Sequence[Cell]],
) -> Fitted:
    """The table of `rows` under `columns`, made to fit `console`'s width. A text column
    with nothing in it takes no room (nothing is left out by leaving it out)."""
    least = _least_widths(columns, rows)
    empty = {
        i for i, col in enumerate(columns)
        if col.kind == "text" and rows and not any(_width(row[i]) for row in rows)
    }  # fmt: skip
    shown = [i for i in range(len(columns)) if i not in empty]
    while _needed([least[i] for i in shown]) > console.width:
        droppable = [i for i in shown if columns[i].drop > 0]
        if not droppable:
            break
        shown.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    needed = _needed([least[i] for i in shown])
    table = _build(
        title,
        [columns[i] for i in shown],
        [[r[i] for i in shown] for r in rows],
        [least[i] for i in shown],
    )
    left_out = [c.header for i, c in enumerate(columns) if i not in shown and i not in empty]
    return Fitted(table, left_out, needed if needed > console.width else None)


def print_table(
    console: Console,
    title: str | None,
    columns: Sequence[Col],
    rows: Sequence[Sequence[Cell]],
) -> None:
    fit(console, title, columns, rows).print(console)


def moment(at: datetime | str | None) -> str:
    """A time as tables show it, to the second: `2026-12-05 20:31:30`."""
    if at is None:
        return ""
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    return when.strftime("%Y-%m-%d %H:%M:%S")
