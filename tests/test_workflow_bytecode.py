"""The worker writes its workflow modules' bytecode (``kruxt.workers.bytecode``): the sandbox
imports them afresh for every run, and without bytecode each of those imports compiles."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client

from kruxt.workers.bytecode import cache_workflow_bytecode
from kruxt.workers.composition import WORKFLOWS, build_worker
from kruxt.workflows.ticket import TicketWorkflow


@pytest.fixture
def workflow_module(tmp_path: Path) -> Iterator[ModuleType]:
    """A module of one (stand-in) workflow class, imported with no bytecode written."""
    source = tmp_path / "kx_bytecode_probe.py"
    source.write_text("class ProbeWorkflow:\n    pass\n")
    sys.path.insert(0, str(tmp_path))
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        yield importlib.import_module("kx_bytecode_probe")
    finally:
        sys.dont_write_bytecode = dont_write
        sys.path.remove(str(tmp_path))
        sys.modules.pop("kx_bytecode_probe", None)


def _cache(module: ModuleType) -> Path:
    return Path(importlib.util.cache_from_source(module.__file__ or ""))


def test_missing_bytecode_is_written(workflow_module: ModuleType) -> None:
    assert not _cache(workflow_module).exists()
    assert cache_workflow_bytecode([workflow_module.ProbeWorkflow]) == []
    assert _cache(workflow_module).exists()


def test_stale_bytecode_is_rewritten_and_fresh_left_alone(workflow_module: ModuleType) -> None:
    cache_workflow_bytecode([workflow_module.ProbeWorkflow])
    cached = _cache(workflow_module)
    written = cached.stat().st_mtime_ns
    cache_workflow_bytecode([workflow_module.ProbeWorkflow])
    assert cached.stat().st_mtime_ns == written  # fresh: not written again

    source = Path(workflow_module.__file__ or "")
    source.write_text("class ProbeWorkflow:\n    changed = True\n")
    later = source.stat().st_mtime + 10
    os.utime(source, (later, later))
    cache_workflow_bytecode([workflow_module.ProbeWorkflow])
    # The header holds the source's mtime: an import now reads the new bytecode, not the old.
    assert int.from_bytes(cached.read_bytes()[8:12], "little") == int(later)


def test_an_unwritable_cache_is_reported(
    workflow_module: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    # A file where the cache directory would go: unwritable even for root.
    _cache(workflow_module).parent.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="kruxt.workers.bytecode"):
        unwritten = cache_workflow_bytecode([workflow_module.ProbeWorkflow])
    assert unwritten == [workflow_module.__file__]
    assert "compile them on every run" in caplog.text


async def test_a_worker_writes_its_workflows_bytecode(
    dev_client: Client, pool: asyncpg.Pool[Any], task_queue: str
) -> None:
    ticket = sys.modules[TicketWorkflow.__module__].__file__ or ""
    Path(importlib.util.cache_from_source(ticket)).unlink(missing_ok=True)
    build_worker(dev_client, task_queue=task_queue, pool=pool)
    for cls in WORKFLOWS:
        source = sys.modules[cls.__module__].__file__ or ""
        assert Path(importlib.util.cache_from_source(source)).exists(), source
