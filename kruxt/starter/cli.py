"""The ``kruxt`` command line: run the services, operate tickets, check the audit trail.

This module loads only the grammar: each command imports what it needs when it runs, so
``kruxt --help`` and a usage error never pay for Temporal, PostgreSQL or FastAPI.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kruxt.starter.cli_grammar import build_parser

if TYPE_CHECKING:
    import argparse

    from kruxt.adapters.settings import Settings

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "CliError", "build_parser", "main"]

EXIT_FAILURE = 1
EXIT_USAGE = 2
# What a shell reports for a command whose reader went away (128 + SIGPIPE).
EXIT_BROKEN_PIPE = 141


class CliError(Exception):
    """A failure the user can act on; printed without a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kruxt``; returns the exit code."""
    args = build_parser().parse_args(argv)
    from pydantic import ValidationError

    from kruxt.adapters.settings import ConfigurationError, load_settings
    from kruxt.models.text import UnstorableTextError

    try:
        settings = load_settings()
        return _dispatch(args, settings)
    except CliError as exc:
        print(f"kruxt: {exc}", file=sys.stderr)
        return exc.code
    except ConfigurationError as exc:
        print(f"kruxt: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as exc:
        print(f"kruxt: invalid configuration or input:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except UnstorableTextError as exc:
        # Refused before anything was started or signalled.
        print(f"kruxt: refused {exc.field}: {exc.reason}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:
        return 130


def _reader_gone() -> int:
    """``kruxt ... | head`` read what it wanted: stop quietly, as other tools do."""
    # What is still buffered would fail again when Python flushes stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    match args.command:
        case "dev":
            from kruxt.adapters.settings import Settings
            from kruxt.adapters.telemetry import configure_logging
            from kruxt.starter.dev import run_dev

            configure_logging(settings.log_level, json_lines=False)
            # The stack reads the real environment only: .kruxt/dev.env describes the stack a
            # previous `kruxt dev` started, which is what this one replaces.
            return run_dev(Settings())
        case "worker":
            from kruxt.adapters.telemetry import configure_logging, configure_tracing
            from kruxt.starter.cli_commands import run
            from kruxt.workers.main import run_worker

            configure_logging(settings.log_level)
            configure_tracing("kruxt-worker", settings.otlp_endpoint)
            run(run_worker(settings))
            return 0
        case "api":
            from kruxt.adapters.telemetry import configure_logging, configure_tracing
            from kruxt.starter.api.main import run_api

            configure_logging(settings.log_level)
            configure_tracing("kruxt-api", settings.otlp_endpoint)
            settings.require_intake_token()
            settings.require_database_url()
            settings.require_audit_keyring()
            run_api(settings)
            return 0
        case "eval" if args.eval_command == "triage":
            from kruxt.starter.eval_cli import run_eval

            return run_eval(args)
    from kruxt.starter.cli_commands import dispatch

    return dispatch(args, settings)
