"""The layers of docs/ARCHITECTURE.md hold: no package imports a package above it, no part imports another
part, and no module outside tests and bench is over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Provisioning sits above central: staff register sites, locations and devices once, into central's org store.
FLOOR = {"smileloop_core": 0, "device": 1, "central": 2, "sync_agent": 2, "kiosk_ui": 2, "hardware": 2,
         "provisioning": 3, "smileloop": 4}
PARTS = {name for name, floor in FLOOR.items() if floor == 2}


def _modules() -> list[Path]:
    return sorted(p for pkg in FLOOR for p in (ROOT / pkg).rglob("*.py") if "firmware" not in p.parts)


def _imports(path: Path) -> set[str]:
    """Top-level packages this module imports (anywhere in it, lazily or not)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out & set(FLOOR)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0]
    for target in _imports(path) - {package}:
        assert FLOOR[target] < FLOOR[package], f"{package} (floor {FLOOR[package]}) imports {target} above it"
        assert not (package in PARTS and target in PARTS), f"part {package} imports part {target}"


def test_no_importlib_tricks_outside_the_device_firmware() -> None:
    for path in _modules():
        assert "import_module(" not in path.read_text(), f"{path}: an import hidden from the layers"


def test_no_module_over_400_lines() -> None:
    long = [f"{p.relative_to(ROOT)}: {n}" for p in _modules() if (n := len(p.read_text().splitlines())) > 400]
    assert not long, long
