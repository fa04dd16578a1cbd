"""Playbook steps run only registered ``kruxt_admin`` changes, with their declared arguments.

What an approver reads and what runs both come from an action's ``name`` and ``args``; these
tests pin the other half: the app client refuses any other function or argument set before any
SQL is built, and the registry refuses a declaration that does not match the app's function.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import pytest

from kruxt.activities.playbooks import auth_login
from kruxt.activities.playbooks.registry import RegistryError, validate
from kruxt.adapters.app_db import CHANGES, KruxtApp, UnknownAppFunction


class NoSql:
    """A pool that fails the test if anything reaches it."""

    async def fetchval(self, *args: Any) -> Any:
        raise AssertionError(f"SQL ran: {args!r}")


def _app() -> KruxtApp:
    return KruxtApp(cast(Any, NoSql()))


@pytest.mark.parametrize(
    "function",
    [
        "account_context",
        "diagnose_auth_login",
        "unlock_account(NULL, NULL); DROP TABLE kruxt_app.users; --",
        "Unlock_Account",
        "",
    ],
)
async def test_only_registered_changes_run(function: str) -> None:
    with pytest.raises(UnknownAppFunction, match="not a registered kruxt_admin change"):
        await _app().call(function, "key-1", user_id="u-locked")


@pytest.mark.parametrize(
    "args",
    [{}, {"account_id": "u-locked"}, {"user_id": "u-locked", "original_key": "k"}],
)
async def test_a_change_runs_only_with_exactly_its_arguments(args: dict[str, str]) -> None:
    with pytest.raises(UnknownAppFunction, match="unlock_account takes user_id"):
        await _app().call("unlock_account", "key-1", **args)


def test_each_change_is_an_attribute_and_nothing_else_is() -> None:
    app = _app()
    for name in CHANGES:
        assert callable(getattr(app, name))
    with pytest.raises(AttributeError):
        app.drop_everything  # noqa: B018
    assert not hasattr(app, "diagnose_auth_loginn")


def test_the_registry_refuses_a_step_the_app_does_not_declare() -> None:
    validate([auth_login.DECLARATION])
    wrong_args = dataclasses.replace(auth_login.UNLOCK, args=("account_id",))
    unknown = dataclasses.replace(auth_login.REVOKE_SESSIONS, name="delete_account")
    for actions in [(wrong_args,), (auth_login.RESEND_VERIFICATION, unknown)]:
        declaration = dataclasses.replace(auth_login.DECLARATION, actions=actions)
        with pytest.raises(RegistryError, match="is not a registered app change"):
            validate([declaration])
    undoing = dataclasses.replace(
        auth_login.DECLARATION,
        actions=(dataclasses.replace(auth_login.UNLOCK, compensation="drop_lock"),),
    )
    with pytest.raises(RegistryError, match="compensation drop_lock is not a registered app undo"):
        validate([undoing])


def test_the_registry_refuses_a_compensation_that_does_not_say_what_it_does() -> None:
    """The approver reads ``undo`` next to each step: a compensation must say what it does."""
    silent = dataclasses.replace(auth_login.UNLOCK, undo="")
    declaration = dataclasses.replace(auth_login.DECLARATION, actions=(silent,))
    with pytest.raises(RegistryError, match="'relock_account' does not say what it does"):
        validate([declaration])
