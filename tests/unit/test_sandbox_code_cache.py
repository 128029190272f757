"""The code cache compiles a module once for all its imports inside the sandbox, follows
edits, and leaves imports outside the sandbox alone."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio import workflow

from p2engine.runtime.sandbox import install_code_cache

MODULE = "p2e_code_cache_probe"


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    source = tmp_path / f"{MODULE}.py"
    source.write_text("def answer() -> int:\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    install_code_cache()
    yield source
    sys.modules.pop(MODULE, None)


def fresh_import() -> object:
    """Import the probe as the sandbox does for each run: from scratch."""
    sys.modules.pop(MODULE, None)
    importlib.invalidate_caches()
    return importlib.import_module(MODULE)


def test_imports_inside_the_sandbox_share_one_compiled_code(
    probe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workflow.unsafe, "in_sandbox", lambda: True)
    first, second = fresh_import(), fresh_import()
    assert first is not second  # each import still executes the module anew
    assert first.answer.__code__ is second.answer.__code__  # type: ignore[attr-defined]


def test_an_edited_source_is_compiled_again(probe: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workflow.unsafe, "in_sandbox", lambda: True)
    assert fresh_import().answer() == 1  # type: ignore[attr-defined]
    probe.write_text("def answer() -> int:\n    return 22\n")
    stat = probe.stat()
    os.utime(probe, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert fresh_import().answer() == 22  # type: ignore[attr-defined]


def test_imports_outside_the_sandbox_compile_as_usual(probe: Path) -> None:
    first, second = fresh_import(), fresh_import()
    assert first.answer.__code__ is not second.answer.__code__  # type: ignore[attr-defined]
