"""Deterministic data errors end an activity at once instead of being retried forever."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import asyncpg
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from kruxt.models.text import BAD_DATA_ERROR, replace_unstorable

P = ParamSpec("P")
R = TypeVar("R")

# SQLSTATE class 22 (asyncpg.exceptions.DataError: invalid byte sequence, untranslatable
# character, string truncation, numeric range...) and asyncpg's own refusal to encode an
# argument raise this one class; the same input fails the same way on every attempt.
DATA_ERRORS: tuple[type[Exception], ...] = (asyncpg.exceptions.DataError, ValidationError)


def bad_data_is_final(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn a data error of ``fn`` into a non-retryable ``BadTicketData`` ApplicationError.

    Put it under ``@activity.defn``; the workflow decides what a refused write means (the
    ticket goes to a person), and transient errors (connection lost, deadlock) still retry.
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except DATA_ERRORS as exc:
            raise ApplicationError(describe(exc), type=BAD_DATA_ERROR, non_retryable=True) from exc

    return wrapper


def describe(exc: Exception) -> str:
    """One storable line: the error class and its first line (asyncpg quotes values with repr)."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0] if exc.errors() else None
        where = ".".join(str(p) for p in first["loc"]) if first else ""
        text = f"{exc.title}: {where}: {first['msg']}" if first else str(exc)
    else:
        text = (str(exc).splitlines() or [""])[0]
    return replace_unstorable(f"{type(exc).__name__}: {text}")[:300]
