"""`--help` of every command: flags take no value, so none shows a `<bool>` type."""

from __future__ import annotations

import pytest

from p2engine.cli.main import _run, command


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
