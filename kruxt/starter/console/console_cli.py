"""``kruxt console token create|list|revoke``: personal tokens for the ``/v1/staff`` API.

A token acts for one person of the approvers directory, with that person's roles as the
directory says at each call; it is printed once and stored only as a hash. The grammar is
:func:`kruxt.starter.cli_grammar.add_console_parser`'s.
"""

from __future__ import annotations

import argparse
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kruxt.adapters.postgres.console_sessions import PersonalToken
    from kruxt.starter.cli_connections import Connections

__all__ = ["run_console"]

MIN_ID_CHARS = 8


async def run_console(args: argparse.Namespace, parts: Connections) -> int:
    """Run a ``console token`` action; returns the exit code."""
    from kruxt.adapters.approvers import ApproversError
    from kruxt.adapters.postgres.console_sessions import ConsoleSessionStore
    from kruxt.starter.cli import EXIT_USAGE, CliError
    from kruxt.starter.console.auth import SignInRefused, new_personal_token

    store = ConsoleSessionStore(await parts.pool())
    if args.console_action == "create":
        try:
            record, token = await new_personal_token(
                store, parts.approvers(), args.actor, name=args.name
            )
        except (SignInRefused, ApproversError) as exc:
            raise CliError(f"--as {exc}", EXIT_USAGE) from exc
        print(f"token {record.id} for {record.email} ({record.name or 'no label'}):")
        print(token)
        print("Shown once: keep it in a secret store. Use: Authorization: Bearer <token>")
        return 0
    if args.console_action == "list":
        for one in await store.tokens(email=args.actor.lower() if args.actor else None):
            print(_line(one))
        return 0
    found = await store.tokens()
    token_id = _resolve(args.token_id, found)
    if token_id is None:
        raise CliError(f"no token {args.token_id!r} (see `kruxt console token list`)", EXIT_USAGE)
    revoked = await store.revoke_token(token_id, by=args.actor)
    if revoked is None:
        raise CliError(f"token {token_id} was revoked already")
    print(f"revoked token {revoked.id} of {revoked.email}")
    return 0


def _resolve(raw: str, tokens: list[PersonalToken]) -> uuid.UUID | None:
    """The one token whose id is ``raw`` or starts with it (at least 8 characters)."""
    text = raw.strip().lower()
    if len(text) < MIN_ID_CHARS:
        return None
    matches = [t.id for t in tokens if str(t.id) == text or str(t.id).startswith(text)]
    return matches[0] if len(matches) == 1 else None


def _line(token: PersonalToken) -> str:
    state = "revoked" if token.revoked_at else "live"
    used = token.last_used_at.strftime("%Y-%m-%d %H:%M") if token.last_used_at else "never"
    return f"{token.id}  {state:7}  {token.email}  used {used}  {token.name}"
