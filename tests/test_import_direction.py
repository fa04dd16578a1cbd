"""Imports go one way (DESIGN.md, "Layout"): every edge between kruxt's layers, read with ast.

``models`` import nothing of ours; ``agents`` (pure reasoning) and ``adapters`` import
``models``; ``activities`` import ``models``, ``adapters`` and the pure ``agents``;
``workflows`` import ``models`` and refer to ``activities``; ``bootstrap`` (the composition
root) builds from everything below it; ``starter`` and ``workers`` sit on top. Inside
``activities`` one concern's module never imports another's: shared code goes to
``adapters``, ``models`` or a private ``_helper`` module. Every import counts, at module level,
inside functions and under ``TYPE_CHECKING`` alike.
"""

from __future__ import annotations

import ast
from pathlib import Path

KRUXT = Path(__file__).resolve().parent.parent / "kruxt"

ALLOWED: dict[str, frozenset[str]] = {
    "models": frozenset({"models"}),
    "agents": frozenset({"models", "agents"}),
    "adapters": frozenset({"models", "adapters"}),
    "activities": frozenset({"models", "adapters", "agents", "activities"}),
    "workflows": frozenset({"models", "activities", "workflows"}),
    "bootstrap": frozenset({"models", "agents", "adapters", "activities", "workflows"}),
    "workers": frozenset(
        {"models", "agents", "adapters", "activities", "workflows", "bootstrap", "workers"}
    ),
    "starter": frozenset(
        {"models", "agents", "adapters", "activities", "workflows", "bootstrap", "workers"}
        | {"starter"}
    ),
}
# Top-level modules that are not packages: the CLI entry point sits with the starter.
TOP_MODULES = {"bootstrap": "bootstrap", "__main__": "starter"}


def module_name(path: Path, root: Path) -> str:
    """``kruxt/adapters/postgres/__init__.py`` -> ``kruxt.adapters.postgres``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """The layer of a kruxt module; None for the package root and for what is not ours."""
    parts = module.split(".")
    if parts[0] != "kruxt" or len(parts) < 2:
        return None
    return TOP_MODULES.get(parts[1], parts[1])


def imported(
    tree: ast.AST, module: str, is_package: bool, known: set[str]
) -> list[tuple[int, str]]:
    """Every kruxt module ``module`` imports, with the line of the import."""
    found: list[tuple[int, str]] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # `from kruxt.activities import incidents` imports the module incidents.
                target = f"{base}.{alias.name}"
                found.append((node.lineno, target if target in known else base))
    # One line importing three names of a module is one edge.
    return sorted({(line, name) for line, name in found if name.split(".")[0] == "kruxt"})


def _sibling_refused(source: str, target: str) -> bool:
    """One activities module importing another concern's (the back-edge DESIGN.md forbids)."""
    if layer_of(source) != "activities" or layer_of(target) != "activities":
        return False
    target_parts = target.split(".")
    if len(target_parts) < 3 or target_parts[-1].startswith("_"):
        return False  # the package itself, or a private helper shared by the activities
    # Inside one subpackage (playbooks/) the modules are one concern's parts.
    source_parts = source.split(".")
    return not (
        len(source_parts) > 3 and len(target_parts) > 3 and source_parts[2] == target_parts[2]
    )


def violations(sources: dict[str, tuple[str, str, bool]]) -> list[str]:
    """Every edge against the table, as ``path:line source-layer -> target-layer (module)``.

    Args:
        sources: module name -> (path shown in messages, source text, is a package).
    """
    known = set(sources)
    found: list[str] = []
    for module, (shown, text, is_package) in sorted(sources.items()):
        layer = layer_of(module)
        for line, target in imported(ast.parse(text), module, is_package, known):
            target_layer = layer_of(target)
            if layer is None or target_layer is None:
                continue
            if target_layer not in ALLOWED[layer] and target_layer != layer:
                found.append(f"{shown}:{line} {layer} -> {target_layer} ({target})")
            elif _sibling_refused(module, target):
                found.append(f"{shown}:{line} activities -> activities sibling ({target})")
    return found


def _tree() -> dict[str, tuple[str, str, bool]]:
    return {
        module_name(path, KRUXT): (
            str(path.relative_to(KRUXT.parent)),
            path.read_text(encoding="utf-8"),
            path.name == "__init__.py",
        )
        for path in sorted(KRUXT.rglob("*.py"))
    }


def test_every_module_belongs_to_a_layer() -> None:
    unknown = sorted(
        module for module in _tree() if module != "kruxt" and layer_of(module) not in ALLOWED
    )
    assert not unknown, f"modules outside DESIGN.md's layers: {unknown}"


def test_imports_follow_the_layers() -> None:
    found = violations(_tree())
    assert not found, "imports against DESIGN.md's direction:\n" + "\n".join(found)


# What does I/O: files, processes, sockets, databases, outside services, Temporal's client
# (its models, exceptions and search attribute keys are pure).
IO_MODULES = frozenset(
    {
        "aiohttp",
        "asyncpg",
        "glob",
        "httpx",
        "io",
        "openai",
        "os",
        "pathlib",
        "requests",
        "sendgrid",
        "shutil",
        "slack_sdk",
        "socket",
        "sqlite3",
        "subprocess",
        "tempfile",
        "temporalio.client",
        "temporalio.service",
        "temporalio.testing",
        "temporalio.worker",
        "urllib",
    }
)


def _does_io(module: str) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:i]) in IO_MODULES for i in range(1, len(parts) + 1))


def io_uses(text: str) -> list[str]:
    """The I/O modules a source imports and the lines that call the builtin ``open``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            found += [f"{node.lineno}: import {n}" for n in names if _does_io(n)]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "open"
        ):
            found.append(f"{node.lineno}: open()")
    return found


def test_models_and_agents_do_no_io() -> None:
    """DESIGN.md: ``models`` are contracts with no I/O, ``agents`` pure reasoning."""
    found = [
        f"{shown}:{use}"
        for module, (shown, text, _) in sorted(_tree().items())
        if layer_of(module) in {"models", "agents"}
        for use in io_uses(text)
    ]
    assert not found, "I/O in models or agents:\n" + "\n".join(found)


def test_io_check_sees_imports_and_open() -> None:
    text = (
        "from pathlib import Path\nimport os.path\nfrom temporalio.common import X\n"
        "from temporalio.client import Client\ndef f(p):\n    return open(p).read()\n"
    )
    assert io_uses(text) == [
        "1: import pathlib",
        "2: import os.path",
        "4: import temporalio.client",
        "6: open()",
    ]


def test_checker_sees_every_form_of_import() -> None:
    """The walker finds back-edges however they are written, so a clean tree means clean."""
    sources = {
        "kruxt.models.a": ("a", "def f():\n    from kruxt.adapters import b\n", False),
        "kruxt.adapters.b": (
            "b",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import kruxt.agents.c\n",
            False,
        ),
        "kruxt.agents": ("agents", "", True),
        "kruxt.agents.c": ("c", "from ..workflows import d\n", False),
        "kruxt.workflows.d": ("d", "from kruxt import bootstrap\n", False),
        "kruxt.bootstrap": ("boot", "from kruxt.starter.intake import X\n", False),
        "kruxt.activities.sla": ("sla", "from kruxt.activities import incidents\n", False),
        "kruxt.activities.incidents": ("inc", "from kruxt.activities._keys import k\n", False),
        "kruxt.activities._keys": ("keys", "from kruxt.models.a import f\n", False),
        "kruxt.activities.playbooks.base": ("pb", "from . import auth\n", False),
        "kruxt.activities.playbooks.auth": ("pa", "from kruxt.agents.c import x\n", False),
    }
    assert sorted(violations(sources)) == [
        "a:2 models -> adapters (kruxt.adapters.b)",
        "b:3 adapters -> agents (kruxt.agents.c)",
        "boot:1 bootstrap -> starter (kruxt.starter.intake)",
        "c:1 agents -> workflows (kruxt.workflows.d)",
        "d:1 workflows -> bootstrap (kruxt.bootstrap)",
        "sla:1 activities -> activities sibling (kruxt.activities.incidents)",
    ]
