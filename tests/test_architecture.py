"""Dependency rules of DESIGN.md section 2 and STYLE rule 1, checked on the source's imports (AST)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from pathlib import Path

import crypto

ROOT = Path(__file__).resolve().parent.parent


def offending_imports(package_dir: Path, allowed: Callable[[str], bool]) -> set[str]:
    """Every absolute import under `package_dir` that `allowed` refuses, as "file: module"."""
    offenders: set[str] = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders.update(f"{path.name}: {name}" for name in names if not allowed(name))
    return offenders


def stdlib_or_nacl(module: str) -> bool:
    top = module.split(".")[0]
    return top in sys.stdlib_module_names or top == "nacl"


def not_triage(module: str) -> bool:
    return not module.startswith("portal.triage")


def test_crypto_imports_only_stdlib_and_nacl() -> None:
    assert offending_imports(ROOT / "crypto", stdlib_or_nacl) == set()


def test_the_rule_catches_a_portal_import(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "import os\nfrom portal.app import create_app\nimport starlette.routing\n"
    )
    assert offending_imports(tmp_path, stdlib_or_nacl) == {"bad.py: portal.app", "bad.py: starlette.routing"}


def test_submission_never_imports_triage() -> None:
    assert offending_imports(ROOT / "portal" / "submission", not_triage) == set()


def test_public_surface_is_sorted_and_complete() -> None:
    # httpx's habit: one sorted __all__ (constants, then classes, then functions), every name importable.
    def kind_then_name(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert crypto.__all__ == sorted(crypto.__all__, key=kind_then_name)
    for name in crypto.__all__:
        assert hasattr(crypto, name), name
