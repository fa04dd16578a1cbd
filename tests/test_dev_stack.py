"""`kruxt dev` as a user runs it: starts everything, serves a ticket, stops every child."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from temporalio.client import Client

from kruxt.adapters import temporal_dev_server
from kruxt.adapters.settings import PROJECT_ROOT
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from tests.support import eventually

pytestmark = pytest.mark.e2e


@dataclass
class RunningStack:
    process: asyncio.subprocess.Process
    output: list[str]
    api: str
    token: str
    child_pids: list[int]


def _dev_env(home: Path) -> dict[str, str]:
    """Port 0 everywhere: `kruxt dev` chooses free ports and reports them (no port races)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "TEMPORAL_ADDRESS", "KRUXT_INTAKE_TOKEN", "KRUXT_PAYLOAD_KEY"}
    }
    env.update(
        KRUXT_HOME=str(home),
        KRUXT_API_PORT="0",
        KRUXT_DEV_TEMPORAL_PORT="0",
        KRUXT_DEV_TEMPORAL_UI_PORT="0",
    )
    return env


@asynccontextmanager
async def kruxt_dev(home: Path) -> AsyncIterator[RunningStack]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kruxt",
        "dev",
        cwd=PROJECT_ROOT,
        env=_dev_env(home),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output: list[str] = []
    try:
        while not any("Ctrl-C stops everything" in line for line in output):
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert line, "kruxt dev exited early:\n" + "".join(output)
            output.append(line.decode())
        text = "".join(output)
        token = re.search(r"intake token\s+(\S+)", text)
        assert token is not None
        api = re.search(r"API\s+(http://\S+)", text)
        assert api is not None
        pids = [int(p) for p in re.findall(r"started \(pid (\d+)", text)]
        yield RunningStack(proc, output, api.group(1), token.group(1), pids)
    finally:
        if proc.returncode is None:
            # As a person stops it (Ctrl-C), so it stops what it started; a SIGKILL would leave
            # its Temporal server and PostgreSQL running with nobody to stop them.
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for leftover in _processes_using(home):
            with contextlib.suppress(psutil.Error):
                leftover.kill()


def _processes_using(home: Path) -> list[Any]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(p.info["cmdline"] or [])
        if str(home) in cmdline:
            found.append(p)
    return found


async def _stop(stack: RunningStack, sig: signal.Signals, home: Path) -> None:
    assert stack.process.stdout is not None
    stack.process.send_signal(sig)
    rest = await asyncio.wait_for(stack.process.stdout.read(), 60)
    stack.output.append(rest.decode())
    assert await asyncio.wait_for(stack.process.wait(), 30) == 0, "".join(stack.output)
    for pid in stack.child_pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert _processes_using(home) == []


async def _ui_decrypts_through_the_api(banner: str, api: str, home: Path) -> None:
    """The dev Web UI is configured with the API's codec endpoint, which answers it."""
    ui = re.search(r"Web UI (http://localhost:\d+)", banner)
    assert ui is not None
    assert (home / "payload_key").stat().st_mode & 0o077 == 0
    async with httpx.AsyncClient() as http:
        settings = (await http.get(f"{ui.group(1)}/api/v1/settings")).json()
        assert settings["Codec"]["Endpoint"] == f"{api}/codec"
        preflight = await http.options(
            f"{api}/codec/decode",
            headers={
                "Origin": ui.group(1),
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == ui.group(1)
        r = await http.post(
            f"{api}/codec/decode", json={"payloads": []}, headers={"Origin": ui.group(1)}
        )
        assert r.status_code == 200, r.text


async def test_dev_starts_serves_stops_and_keeps_its_data(tmp_path: Path) -> None:
    home = tmp_path / "kx"
    body = {
        "external_id": "dev-1",
        "requester": {"id": "u1", "email": "ana@example.com", "name": "Ana"},
        "subject": "Data export status?",
        "body": "What is the status of my data export request?",
    }
    async with kruxt_dev(home) as stack:
        banner = "".join(stack.output)
        assert "Web UI http://localhost:" in banner
        assert "migrations applied" in banner
        await _ui_decrypts_through_the_api(banner, stack.api, home)
        async with httpx.AsyncClient(
            base_url=stack.api, headers={"Authorization": f"Bearer {stack.token}"}
        ) as http:
            assert (await http.get("/healthz")).status_code == 200
            accepted = (await http.post("/v1/tickets", json=body)).json()

            async def answered() -> bool:
                r = await http.get(f"/v1/tickets/{accepted['ticket_id']}")
                return r.status_code == 200 and r.json()["status"] == "awaiting_customer"

            await eventually(answered)
        await _stop(stack, signal.SIGINT, home)
        assert (home / "temporal.db").exists()
        assert not (home / "dev.env").exists()
        payload_key = (home / "payload_key").read_text()

    # A second run reuses the data: same token, same tickets, schema already current.
    async with kruxt_dev(home) as again:
        assert again.token == stack.token
        assert "schema up to date" in "".join(again.output)
        assert (home / "payload_key").read_text() == payload_key  # history stays readable
        async with httpx.AsyncClient(
            base_url=again.api, headers={"Authorization": f"Bearer {again.token}"}
        ) as http:
            r = await http.get(f"/v1/tickets/{accepted['ticket_id']}")
            assert r.status_code == 200
            assert r.json()["status"] == "awaiting_customer"
        await _stop(again, signal.SIGTERM, home)


def _listening_ports(pid: int) -> set[int]:
    connections = psutil.Process(pid).net_connections(kind="tcp")
    return {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}


async def test_dev_on_port_0_reports_the_ports_it_listens_on(tmp_path: Path) -> None:
    """Port 0 for the API, Temporal and its Web UI: the ports printed and written to dev.env
    are the chosen ones, each listened on by the process `kruxt dev` started for it."""
    home = tmp_path / "kx"
    async with kruxt_dev(home) as stack:
        banner = "".join(stack.output)
        dev_env = dict(line.split("=", 1) for line in (home / "dev.env").read_text().splitlines())
        api_port = urlsplit(stack.api).port
        temporal = re.search(
            r"Temporal\s+127\.0\.0\.1:(\d+)\s+Web UI http://localhost:(\d+)", banner
        )
        api_pid = re.search(r"api: started \(pid (\d+)", banner)
        assert api_port and temporal is not None and api_pid is not None, banner
        temporal_port, ui_port = int(temporal.group(1)), int(temporal.group(2))
        assert 0 not in (temporal_port, ui_port)
        assert dev_env["KRUXT_API_PORT"] == str(api_port)
        assert dev_env["KRUXT_PUBLIC_URL"] == stack.api
        assert dev_env["TEMPORAL_ADDRESS"] == f"127.0.0.1:{temporal_port}"
        assert f"http://localhost:{ui_port}" in dev_env["KRUXT_CODEC_CORS_ORIGINS"].split(",")

        assert api_port in _listening_ports(int(api_pid.group(1)))
        (server,) = [
            p for p in psutil.Process(stack.process.pid).children() if "start-dev" in p.cmdline()
        ]
        assert {temporal_port, ui_port} <= _listening_ports(server.pid)
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{stack.api}/healthz")).status_code == 200
            ui = await http.get(f"http://localhost:{ui_port}/api/v1/settings")
            assert ui.json()["Codec"]["Endpoint"] == f"{stack.api}/codec"
        await _stop(stack, signal.SIGTERM, home)


async def test_temporal_on_port_0_moves_to_another_port_when_its_port_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The port chosen for the CLI is taken before it binds (the race): it starts again
    elsewhere and owns the port it reports."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    # The first choice is the taken port, as if another process had just bound it.
    choices = iter([taken.getsockname()[1]])
    real = temporal_dev_server.unused_port
    monkeypatch.setattr(temporal_dev_server, "unused_port", lambda: next(choices, None) or real())
    server = TemporalDevServer(port=0, ui_port=None)
    try:
        await server.launch()
        assert server.process is not None
        assert server.port != taken.getsockname()[1]
        assert server.port in _listening_ports(server.process.pid)
        # Ready means answering: a client connects at once.
        await asyncio.wait_for(Client.connect(server.address), timeout=5)
    finally:
        server.stop()
        taken.close()


async def test_a_server_that_listens_is_not_ready_until_its_frontend_answers() -> None:
    """Bound ports are not enough (a frontend answers "not healthy yet" for a while after it
    binds): a process of the server's that listens on its port but answers no Temporal call
    is never reported ready (the real server is, and answers a client at once: see above)."""
    silent = TemporalDevServer(port=0, ui_port=None)
    silent.process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, time\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
            "print(s.getsockname()[1], flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert silent.process.stdout is not None
        silent.port = int(await asyncio.to_thread(silent.process.stdout.readline))
        with pytest.raises(TimeoutError):
            await silent.wait_ready(timeout=4)
    finally:
        silent.process.kill()
        silent.process.wait()


async def _said(stack: RunningStack, pattern: str, timeout: float = 60) -> re.Match[str]:
    """Read `kruxt dev`'s output until a line matches ``pattern``; that match."""
    assert stack.process.stdout is not None
    while True:
        line = await asyncio.wait_for(stack.process.stdout.readline(), timeout)
        assert line, "kruxt dev ended:\n" + "".join(stack.output)
        stack.output.append(line.decode())
        found = re.search(pattern, line.decode())
        if found:
            return found


async def test_dev_starts_again_a_worker_or_api_that_dies(tmp_path: Path) -> None:
    """A killed worker and a killed API are started again, saying so, and the stack goes on:
    a ticket opened after both were killed is answered, at the same API address."""
    home = tmp_path / "kx"
    async with kruxt_dev(home) as stack:
        banner = "".join(stack.output)
        worker = re.search(r"worker: started \(pid (\d+)", banner)
        api = re.search(r"api: started \(pid (\d+)", banner)
        assert worker is not None and api is not None, banner
        os.kill(int(worker.group(1)), signal.SIGKILL)
        await _said(stack, r"worker exited \(killed by SIGKILL\); starting it again")
        new_worker = int((await _said(stack, r"worker: started \(pid (\d+)")).group(1))
        os.kill(int(api.group(1)), signal.SIGKILL)
        await _said(stack, r"api exited \(killed by SIGKILL\); starting it again")
        new_api = int((await _said(stack, r"api: started \(pid (\d+)")).group(1))
        assert {new_worker, new_api}.isdisjoint({int(worker.group(1)), int(api.group(1))})
        body = {
            "external_id": "dev-restarted",
            "requester": {"id": "u1", "email": "ana@example.com", "name": "Ana"},
            "subject": "Data export status?",
            "body": "What is the status of my data export request?",
        }
        async with httpx.AsyncClient(
            base_url=stack.api, headers={"Authorization": f"Bearer {stack.token}"}, timeout=30
        ) as http:
            # The socket stayed open in `kruxt dev`: this waits for the new API, never refused.
            accepted = (await http.post("/v1/tickets", json=body)).json()

            async def answered() -> bool:
                r = await http.get(f"/v1/tickets/{accepted['ticket_id']}")
                return r.status_code == 200 and r.json()["status"] == "awaiting_customer"

            await eventually(answered)
        stack.child_pids.extend([new_worker, new_api])
        await _stop(stack, signal.SIGINT, home)
