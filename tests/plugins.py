"""A throwaway installed distribution with one entry point, for the plugin tests of the
tool and evaluator registries."""

from __future__ import annotations

import importlib
from pathlib import Path


def install_distribution(
    site: Path, group: str, entry_name: str, module: str, source: str, dist: str
) -> None:
    """Write `module` into `site` and a distribution whose `group` entry point names it."""
    (site / f"{module}.py").write_text(source)
    dist_info = site / f"{dist}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[{group}]\n{entry_name} = {module}\n")
    importlib.invalidate_caches()
