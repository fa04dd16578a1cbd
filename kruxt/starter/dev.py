"""``kruxt dev``: the whole stack on embedded defaults, in one process tree.

Starts (unless configured elsewhere) the Temporal dev server and an embedded PostgreSQL,
applies the migrations, then runs a worker and the API as child processes, starting either
again when it exits on its own (``kruxt.starter.dev_restarts``). Ctrl-C or SIGTERM stops every
child; the data in ``.kruxt/`` stays for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from kruxt.adapters import event_loop
from kruxt.adapters.app_db import install_app_schema
from kruxt.adapters.approvers import Approver, ApproversError, dump_approvers, load_approvers
from kruxt.adapters.email import ABOUT_HEADER, LINK_HEADER
from kruxt.adapters.embedded_postgres import (
    EmbeddedPostgres,
    database_of,
    with_database,
    with_user,
)
from kruxt.adapters.payload_codec import generate_key
from kruxt.adapters.postgres import migrations
from kruxt.adapters.postgres.pool import connect as pg_connect
from kruxt.adapters.settings import Settings
from kruxt.adapters.temporal_client import connect as temporal_connect
from kruxt.adapters.temporal_dev_server import TemporalDevServer
from kruxt.agents.patterns import NOT_SPACE, Pattern
from kruxt.models.playbooks import ApproverRole
from kruxt.starter.dev_restarts import RestartBudget, exit_reason

DEV_DATABASE = "kruxt"
# An approval link in a mail of the outbox (on RE2: the mail quotes ticket text).
_APPROVAL_LINK = Pattern(rf"https?://{NOT_SPACE}+/approvals/email/{NOT_SPACE}+", ignore_case=False)
DEV_APP_DATABASE = "kruxt_app"
# In the dev home: the name of the last outbox mail printed.
OUTBOX_CURSOR = "outbox.cursor"
DEV_APPROVERS = [
    Approver(
        name="Dev Founder",
        email="founder@kruxt.dev",
        roles=[
            ApproverRole.APPROVER,
            ApproverRole.MODERATOR,
            ApproverRole.ADMIN,
            ApproverRole.STAFF,
        ],
        level=2,
    ),
    Approver(name="Dev On-call", email="oncall@kruxt.dev", roles=[ApproverRole.APPROVER], level=1),
]


def say(message: str) -> None:
    """Progress for the person waiting at the terminal."""
    print(f"kruxt dev | {message}", flush=True)


class DevStack:
    """The embedded stack and its children."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.home.resolve()
        self.logs = self.home / "logs"
        self.postgres: EmbeddedPostgres | None = None
        self.temporal: TemporalDevServer | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        # What the children are started with, again when one is restarted.
        self.child_env: dict[str, str] = {}
        self.restarts: dict[str, RestartBudget] = {}
        # The API's listening socket, bound here and handed to each API child: it stays open
        # here, so requests wait in its backlog while a restarted API starts.
        self.api_socket: socket.socket | None = None
        self.api_port = settings.api_port

    async def run(self) -> int:
        """Start everything, wait for a signal or a dying child, stop everything."""
        self.logs.mkdir(parents=True, exist_ok=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            self._bind_api()
            dsn, runtime_dsn = await self._postgres()
            app_dsn = await self._app_database(dsn)
            address, ui = await self._temporal()
            token = self._intake_token()
            # The worker and the API connect as the runtime role; `kruxt migrate` as the owner.
            env = self._child_env(runtime_dsn, address, token)
            env["KRUXT_API_PORT"] = str(self.api_port)
            if runtime_dsn != dsn:
                env["KRUXT_MIGRATE_DATABASE_URL"] = dsn
            env.update(self._audit_key())
            env["APP_DATABASE_URL"] = app_dsn
            env.update(self._approvers())
            env.update(self._links())
            env.update(self._payload_encryption())
            self._write_dev_env(env)
            self.child_env = env
            self._spawn("worker", env)
            self._spawn("api", env)
            await self._wait_api()
            await self._schedules(env)
            signing_in = await self._console_sign_in(env)
            self._banner(runtime_dsn, address, ui, token, signing_in)
            if ui:
                say(f"Web UI decrypts history through {self._codec_endpoint()}")
            failed = await self._supervise(stop)
            return 1 if failed else 0
        except StartupError as exc:
            say(f"could not start: {exc}")
            return 1
        finally:
            self._shutdown()

    # -- services --------------------------------------------------------------------------

    async def _postgres(self) -> tuple[str, str]:
        """Migrate as the owner; return the owner's DSN and the runtime role's."""
        if self.settings.database_url is not None:
            runtime_dsn = self.settings.database_url.get_secret_value()
            dsn = self.settings.require_migrate_database_url()
            say(f"PostgreSQL: using DATABASE_URL (database {database_of(runtime_dsn)})")
        else:
            say(f"PostgreSQL: starting the embedded server (data in {self.home / 'pg'}) ...")
            self.postgres = EmbeddedPostgres(self.home / "pg")
            try:
                admin_dsn = await asyncio.to_thread(self.postgres.start)
            except Exception as exc:
                raise StartupError(f"embedded PostgreSQL failed to start: {exc}") from exc
            dsn = with_database(admin_dsn, DEV_DATABASE)
            # The socket's trust authentication lets the runtime role in without a password.
            runtime_dsn = with_user(dsn, migrations.RUNTIME_ROLE)
            await _ensure_database(admin_dsn, DEV_DATABASE)
        try:
            conn = await pg_connect(dsn)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StartupError(f"cannot reach PostgreSQL: {exc}") from exc
        try:
            if self.postgres is not None:
                await migrations.ensure_runtime_role(conn)
            applied = await migrations.apply(conn, self.settings.migrations_dir)
        finally:
            await conn.close()
        say(
            f"PostgreSQL: migrations applied: {', '.join(f'{m.version:03d}' for m in applied)}"
            if applied
            else "PostgreSQL: schema up to date"
        )
        return dsn, runtime_dsn

    async def _app_database(self, support_dsn: str) -> str:
        """The KRUXT app playbooks act on: APP_DATABASE_URL, or the reference app with demo
        data in a database of its own next to the support one."""
        if self.settings.app_database_url is not None:
            say(
                "KRUXT app: using APP_DATABASE_URL "
                "(install its functions with `kruxt migrate --app`)"
            )
            return self.settings.app_database_url.get_secret_value()
        app_dsn = with_database(support_dsn, DEV_APP_DATABASE)
        await _ensure_database(with_database(support_dsn, "postgres"), DEV_APP_DATABASE)
        conn = await pg_connect(app_dsn)
        try:
            applied = await install_app_schema(conn, with_demo_data=True)
        finally:
            await conn.close()
        say(
            f"KRUXT app: reference schema with demo users in database {DEV_APP_DATABASE}"
            + (f" ({len(applied)} migrations applied)" if applied else "")
        )
        return app_dsn

    def _bind_api(self) -> None:
        """Listen on the API's address here (port 0: the OS chooses) for the API child to serve.

        The port is held from the moment it is chosen, so the one printed is the one served.
        """
        host = self.settings.api_host
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, self.settings.api_port))
            sock.listen(2048)
        except OSError as exc:
            sock.close()
            raise _port_in_use(self.settings.api_port) from exc
        self.api_socket = sock
        self.api_port = sock.getsockname()[1]

    def _api_url(self) -> str:
        host = self.settings.api_host
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        return f"http://{f'[{host}]' if ':' in host else host}:{self.api_port}"

    def _links(self) -> dict[str, str]:
        """E-mailed approval links: signed with a secret kept in .kruxt/, pointing at the API."""
        public_url = self.settings.public_url if "KRUXT_PUBLIC_URL" in os.environ else None
        env = {"KRUXT_PUBLIC_URL": public_url or self._api_url()}
        if self.settings.link_secret is None:
            path = self.home / "link_secret"
            if not path.exists():
                path.write_text(secrets.token_urlsafe(48) + "\n")
                path.chmod(0o600)
            env["KRUXT_LINK_SECRET"] = path.read_text().strip()
        return env

    def _payload_encryption(self) -> dict[str, str]:
        """Temporal payloads encrypted with a key kept in .kruxt/ (KRUXT_PAYLOAD_KEY wins), and
        the API's codec endpoint open to the Web UI on this machine."""
        env: dict[str, str] = {}
        if self.settings.payload_key is None:
            path = self.home / "payload_key"
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(generate_key() + "\n")
            env["KRUXT_PAYLOAD_KEY"] = path.read_text().strip()
        ui = self.settings.dev_temporal_ui_port
        if self.temporal is not None and self.temporal.ui_port is not None:
            ui = self.temporal.ui_port  # the one chosen for port 0
        env.setdefault("KRUXT_CODEC_CORS_ORIGINS", f"http://localhost:{ui},http://127.0.0.1:{ui}")
        # The dev Web UI sends no credentials; whoever can reach the loopback API can open that
        # unauthenticated UI anyway. The API refuses this allowance on a non-loopback address.
        if self.settings.api_host in ("127.0.0.1", "localhost", "::1"):
            env["KRUXT_CODEC_ALLOW_LOOPBACK"] = "true"
        return {k: v for k, v in env.items() if k not in os.environ}

    def _codec_endpoint(self) -> str:
        return f"{self._api_url()}/codec"

    def _audit_key(self) -> dict[str, str]:
        """The audit chain's HMAC key, kept in .kruxt/ (never in the database)."""
        if self.settings.audit_key is not None:
            return {}
        path = self.home / "audit_key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
        return {"KRUXT_AUDIT_KEY": path.read_text().strip()}

    def _announce_mail(self) -> None:
        """Print the links of mail the worker wrote to the outbox since the last one printed
        (dev has no SMTP), each with what it does, for whom and on what.

        The last mail printed is remembered in ``.kruxt/outbox.cursor``: a restart prints only
        new mail, never the links of decisions taken long ago.
        """
        outbox = self.home / "outbox"
        if self.settings.sendgrid_api_key is not None or not outbox.is_dir():
            return
        cursor = self.home / OUTBOX_CURSOR
        last = cursor.read_text().strip() if cursor.exists() else ""
        # Names start with their UTC time: sorted by name is sorted by age.
        fresh = sorted(p for p in outbox.glob("*.eml") if p.name > last)
        for path in fresh:
            mail = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            say(f"mail to {mail['To']}: {mail['Subject']}")
            for line in _link_lines(mail):
                say(f"  {line}")
        if fresh:
            cursor.write_text(fresh[-1].name + "\n")

    def _approvers(self) -> dict[str, str]:
        if self.settings.approvers or self.settings.approvers_file:
            return {}
        path = self.home / "approvers.yaml"
        if not path.exists():
            path.write_text(
                "# Who may approve playbook plans in `kruxt dev` (edit freely).\n"
                + dump_approvers(DEV_APPROVERS)
            )
        return {"KRUXT_APPROVERS_FILE": str(path)}

    async def _temporal(self) -> tuple[str, str | None]:
        if "TEMPORAL_ADDRESS" in os.environ:
            address = self.settings.temporal_address
            say(f"Temporal: using TEMPORAL_ADDRESS={address}")
            try:
                await temporal_connect(
                    address, payload_codec=None, namespace=self.settings.temporal_namespace
                )
            except Exception as exc:
                raise StartupError(str(exc)) from exc
            return address, None
        port, ui_port = self.settings.dev_temporal_port, self.settings.dev_temporal_ui_port
        for p in (port, ui_port):
            if p != 0:  # 0: launch() chooses one, and another if it is taken meanwhile
                _require_free_port(p)
        say("Temporal: starting the dev server ...")
        self.temporal = TemporalDevServer(
            port=port,
            ui_port=ui_port,
            db_file=self.home / "temporal.db",
            log_file=self.logs / "temporal.log",
            ui_codec_endpoint=self._codec_endpoint(),
        )
        try:
            await self.temporal.launch()  # returns once its frontend answers
        except (RuntimeError, TimeoutError) as exc:
            raise StartupError(str(exc)) from exc
        return self.temporal.address, f"http://localhost:{self.temporal.ui_port}"

    def _intake_token(self) -> str:
        if self.settings.intake_token is not None:
            return self.settings.intake_token.get_secret_value()
        path = self.home / "intake_token"
        if path.exists():
            return path.read_text().strip()
        token = secrets.token_urlsafe(32)
        path.write_text(token + "\n")
        path.chmod(0o600)
        return token

    def _child_env(self, dsn: str, address: str, token: str) -> dict[str, str]:
        return {
            "DATABASE_URL": dsn,
            "TEMPORAL_ADDRESS": address,
            "KRUXT_INTAKE_TOKEN": token,
            "KRUXT_HOME": str(self.home),
        }

    def _write_dev_env(self, env: dict[str, str]) -> None:
        path = self.settings.dev_env_file
        path.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        path.chmod(0o600)

    def _spawn(self, name: str, env: dict[str, str]) -> None:
        fds: tuple[int, ...] = ()
        if name == "api" and self.api_socket is not None:
            fds = (self.api_socket.fileno(),)
        with open(self.logs / f"{name}.log", "ab") as log:  # the child has its own copy
            self.children[name] = subprocess.Popen(
                self._command(name, fds),
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=fds,
            )
        say(f"{name}: started (pid {self.children[name].pid}, log {self.logs / f'{name}.log'})")

    def _command(self, name: str, fds: tuple[int, ...]) -> list[str]:
        """The child's command line: ``kruxt worker``, or the API serving the socket in
        ``fds``."""
        if fds:
            return [sys.executable, "-m", "kruxt.starter.dev_api", str(fds[0])]
        return [sys.executable, "-m", "kruxt", name]

    async def _schedules(self, env: dict[str, str]) -> None:
        """Create the Temporal Schedules (the weekly review) as production's
        ``kruxt schedules apply`` does, with the children's settings; print what it did."""
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "kruxt", "schedules", "apply"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        say((done.stdout or done.stderr).strip() or "schedules: nothing said")

    async def _wait_api(self, timeout: float = 60.0) -> None:
        """Wait for the API to answer: the socket listens from the start (this process bound
        it), so only an HTTP answer says the child serves it."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as http:
            while asyncio.get_running_loop().time() < deadline:
                api = self.children["api"]
                if api.poll() is not None:
                    raise StartupError(
                        f"the API exited (code {api.returncode}); see {self.logs}/api.log"
                    )
                try:
                    await http.get(f"{self._api_url()}/healthz")
                    return
                except httpx.TransportError:
                    await asyncio.sleep(0.25)
        raise StartupError(f"the API did not answer on :{self.api_port} within {timeout:.0f}s")

    async def _console_sign_in(self, env: dict[str, str]) -> str | None:
        """Ask the console for a sign-in link for the first person of the approvers directory,
        as the sign-in page does: the mail lands in the outbox and its link is printed with the
        others. Who it is for; None when there is nobody, or the API did not take it."""
        try:
            directory = load_approvers(
                file=Path(env["KRUXT_APPROVERS_FILE"])
                if "KRUXT_APPROVERS_FILE" in env
                else self.settings.approvers_file,
                inline=self.settings.approvers,
            )
        except ApproversError as exc:
            say(f"console: no sign-in link ({exc})")
            return None
        if not directory.approvers:
            return None
        email = str(directory.approvers[0].email)
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
            try:
                answer = await http.post(
                    f"{self._api_url()}/console/sign-in", data={"email": email}
                )
            except httpx.HTTPError as exc:
                say(f"console: no sign-in link ({exc})")
                return None
        return email if answer.status_code == 200 else None

    def _banner(
        self, dsn: str, address: str, ui: str | None, token: str, signing_in: str | None = None
    ) -> None:
        api = self._api_url()
        console = (
            f"(a sign-in link for {signing_in} follows)"
            if signing_in
            else "(sign in with an address of the approvers directory)"
        )
        lines = [
            "",
            "KRUXT Support Autopilot is running",
            f"  Console        {api}/console   {console}",
            f"  API            {api}   (docs {api}/docs, health {api}/healthz)",
            f"  Temporal       {address}" + (f"   Web UI {ui}" if ui else ""),
            f"  PostgreSQL     {_redact(dsn)}",
            f"  intake token   {token}",
            f"  logs           {self.logs}/",
            f"  approvers      {self.home / 'approvers.yaml'} (demo app users: u-locked, "
            "u-workout-fail, u-garmin, u-waitlist, ...)",
            "",
            "Try it (in another terminal):",
            "  kruxt ticket new --email ana@example.com --account u-locked "
            '--subject "Cannot log in" --body "My account says locked"',
            "  kruxt ticket list",
            "  kruxt approvals list",
            "  kruxt approvals decide <approval-id> approve --as founder@kruxt.dev",
            f"  curl -H 'Authorization: Bearer {token}' {api}/v1/tickets/<ticket_id>",
            "",
            "Webhooks (paste into the product with its secret; off until the secret is set):",
            f"  Zendesk        {api}/webhooks/zendesk   "
            + ("(on)" if self.settings.zendesk_webhook_secret else "(set ZENDESK_WEBHOOK_SECRET)"),
            f"  Intercom       {api}/webhooks/intercom  "
            + ("(on)" if self.settings.intercom_client_secret else "(set INTERCOM_CLIENT_SECRET)"),
            "",
            "Ctrl-C stops everything; data stays in " + str(self.home),
        ]
        print("\n".join(lines), flush=True)

    async def _supervise(self, stop: asyncio.Event) -> bool:
        """Until ``stop``: print new mail's links, start again a child that exited; True when
        the stack must stop for a failure (a child exiting over and over, the dev server)."""
        while not stop.is_set():
            self._announce_mail()
            for name, proc in list(self.children.items()):
                if proc.poll() is None:
                    continue
                why = exit_reason(name, proc.returncode)
                budget = self.restarts.setdefault(name, RestartBudget())
                if not budget.allow():
                    say(
                        f"{name} exited ({why}) again after {budget.limit} restarts within "
                        f"{budget.window:.0f} s; stopping. See {self.logs}/{name}.log"
                    )
                    return True
                say(f"{name} exited ({why}); starting it again. See {self.logs}/{name}.log")
                self._spawn(name, self.child_env)
            if self.temporal and self.temporal.process and self.temporal.process.poll() is not None:
                say(f"the Temporal dev server exited; see {self.logs}/temporal.log")
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        say("stopping ...")
        return False

    def _shutdown(self) -> None:
        # Other terminals stop pointing at a stack that is going away.
        self.settings.dev_env_file.unlink(missing_ok=True)
        if self.api_socket is not None:
            self.api_socket.close()
        for proc in self.children.values():
            if proc.poll() is None:
                proc.terminate()
        for name, proc in self.children.items():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop in time; killing it")
                proc.kill()
                proc.wait()
        if self.temporal is not None:
            self.temporal.stop()
            say("Temporal dev server stopped")
        if self.postgres is not None:
            self.postgres.stop()
            say("PostgreSQL stopped")


class StartupError(Exception):
    """A part of the stack could not start; the message says which and why."""


def _link_lines(mail: EmailMessage) -> list[str]:
    """``approve auth login on ticket C8AC88BA as founder@kruxt.dev: <url>``, one per link.

    The outbox writes each link's label in a header; a mail written before it did gets its
    approval links found in the text, labelled "open".
    """
    about = str(mail.get(ABOUT_HEADER, ""))
    to = mail["To"].addresses[0].addr_spec if mail["To"] and mail["To"].addresses else ""
    whom = " ".join(part for part in (about, f"as {to}" if to else "") if part)
    labelled = [str(h).rsplit(" ", 1) for h in mail.get_all(LINK_HEADER, [])]
    if not labelled:
        body = mail.get_body(preferencelist=("plain",))
        content = body.get_content() if isinstance(body, EmailMessage) else ""
        found = [content[link.start : link.end] for link in _APPROVAL_LINK.finditer(content)]
        labelled = [["open", link] for link in dict.fromkeys(found)]
    return [f"{label} {whom}: {url}" if whom else f"{label}: {url}" for label, url in labelled]


def _require_free_port(port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise _port_in_use(port) from exc


def _port_in_use(port: int) -> StartupError:
    return StartupError(
        f"port {port} is in use (another `kruxt dev`?); stop it, set it to 0 (any free port), "
        "or see the README's configuration table to use other ports or an existing Temporal"
    )


async def _ensure_database(admin_dsn: str, name: str) -> None:
    conn = await pg_connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if not parts.password:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def run_dev(settings: Settings) -> int:
    """Run the embedded stack until Ctrl-C."""
    # Its own health polls are no news to the person at the terminal (httpx logs each at INFO).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return event_loop.run(DevStack(settings).run())


__all__ = ["DevStack", "run_dev"]
