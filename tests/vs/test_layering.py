"""vs/ modules depend one way (issue 12): protocol <- native <- step <- filters <- entry.

Imports are read from the source (function-level ones included), so a lazy import that
closes a circle counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import vsshiftnet.vs

VS_DIR = Path(vsshiftnet.vs.__file__).parent
#: Each module may import only modules of a lower rank.
RANK = {"protocol": 0, "convert": 0, "scenecut": 0, "native": 1, "step": 2, "filters": 3,
        "entry": 4, "bench": 5, "__init__": 5}


def _local_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "vsshiftnet.vs."):
            found.add(node.module.split(".")[2])
    return found & set(RANK)


def test_every_vs_module_has_a_rank() -> None:
    assert {p.stem for p in VS_DIR.glob("*.py")} == set(RANK)


def test_imports_point_down_only() -> None:
    for path in VS_DIR.glob("*.py"):
        for dep in _local_imports(path):
            assert RANK[dep] < RANK[path.stem], f"vs/{path.stem} imports vs/{dep}"


def test_native_plugin_enters_through_entry() -> None:
    source = (VS_DIR.parents[1] / "native" / "shiftnet_bridge.c").read_text()
    assert '#define ENTRY_MODULE "vsshiftnet.vs.entry"' in source
    import vsshiftnet.vs.entry as entry

    assert callable(entry._plugin_entry) and callable(entry._claim_step)
