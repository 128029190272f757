"""`--help` of every command: flags take no value, so none shows a `<bool>` type, and its
prose wraps at the terminal's width, not where the docstring's lines ended."""

from __future__ import annotations

import itertools

import pytest

from p2engine.cli.main import _run, command, reflowed


def commands(cmd: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in getattr(cmd, "commands", {}).items():
        found += commands(sub, (*path, name))
    return found


@pytest.mark.parametrize("path", commands(command()), ids=lambda p: " ".join(p) or "p2e")
def test_help_shows_flags_without_a_type(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["p2e", *path, "--help"])
    monkeypatch.setenv("COLUMNS", "120")
    assert _run() == 0
    out = capsys.readouterr().out
    assert "--help" in out and "<bool>" not in out


def short_options(cmd: object) -> dict[str, set[str]]:
    """Each short option and the long options it stands for, over every command."""
    found: dict[str, set[str]] = {}
    for param in getattr(cmd, "params", []):
        names = getattr(param, "opts", [])
        longs = {n for n in names if n.startswith("--")}
        for short in (n for n in names if not n.startswith("--")):
            found.setdefault(short, set()).update(longs)
    for sub in getattr(cmd, "commands", {}).values():
        for short, longs in short_options(sub).items():
            found.setdefault(short, set()).update(longs)
    return found


def test_a_short_option_means_the_same_on_every_command() -> None:
    ambiguous = {s: longs for s, longs in short_options(command()).items() if len(longs) > 1}
    assert ambiguous == {}


def test_a_docstrings_paragraphs_are_reflowed_and_its_lists_kept() -> None:
    text = """First line
    goes on.

    A paragraph
    over three
    lines.

    - one item
    - another"""
    assert reflowed(text) == (
        "First line goes on.\n\nA paragraph over three lines.\n\n- one item\n- another"
    )


@pytest.mark.parametrize("path", [("chat",), ("rollout", "start"), ("conversation", "branches")])
def test_help_prose_at_80_columns_has_no_short_ragged_lines(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["p2e", *path, "--help"])
    monkeypatch.setenv("COLUMNS", "80")
    assert _run() == 0
    prose = capsys.readouterr().out.split("╭")[0].splitlines()[3:]
    lines = [line.strip() for line in prose]
    # Each paragraph's lines but its last fill the width (a word more would not fit).
    for line, after in itertools.pairwise(lines):
        if line and after:
            assert len(line) + 1 + len(after.split()[0]) > 76, (line, after)
