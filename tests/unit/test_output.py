"""What p2e prints: content shows its control characters as escapes, links are encoded."""

from __future__ import annotations

import io

from p2engine.cli.common import SafeConsole, ui_url, visible
from p2engine.runtime.settings import Settings, TemporalSettings


def test_control_characters_are_shown_as_escapes() -> None:
    assert visible("a\x1b[31mb\x00c\x07d\x7fe\x85") == "a\\x1b[31mb\\x00c\\x07d\\x7fe\\x85"


def test_newlines_tabs_and_printable_unicode_stay() -> None:
    assert visible("line 1\n\tline 2: 15°C, 東京, café") == "line 1\n\tline 2: 15°C, 東京, café"


def test_bidi_controls_and_undecodable_bytes_are_shown() -> None:
    assert visible("abc\u202edef") == "abc\\u202edef"
    assert visible("caf\udce9") == "caf\\xe9"  # argv byte 0xe9 that was not UTF-8


def test_console_shows_escapes_in_print_arguments_and_table_cells() -> None:
    from rich.table import Table

    out = io.StringIO()
    console = SafeConsole(file=out, markup=False, width=80)
    table = Table(title="t\x1b]0;x\x07")
    table.add_column("c")
    table.add_row("\x1b[2Jcell")
    console.print("say \x1b[2J", highlight=False)
    console.print(table)

    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert "say \\x1b[2J" in text and "\\x1b[2Jcell" in text and "\\x1b]0;x\\x07" in text


def test_web_ui_links_are_percent_encoded() -> None:
    settings = Settings(
        temporal=TemporalSettings(address="127.0.0.1:7233", ui_url="http://ui:8233/")
    )

    assert ui_url(settings, "conv-x/d2-agent_helper") == (
        "http://ui:8233/namespaces/default/workflows/conv-x%2Fd2-agent_helper"
    )
    assert ui_url(settings, "q x/y?z#w") == (
        "http://ui:8233/namespaces/default/workflows/q%20x%2Fy%3Fz%23w"
    )
