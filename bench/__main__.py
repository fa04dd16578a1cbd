"""``python -m bench``: run every benchmark and print its ratio to its baseline."""

from __future__ import annotations

import asyncio

from bench import audit_chain, cli_start, hostile_text, reply_guard, rules_triage


async def main() -> None:
    """Run the benchmarks one after another."""
    print(rules_triage.run())
    print(hostile_text.run())
    print(reply_guard.run())
    print(await audit_chain.run())
    print(await cli_start.run())


if __name__ == "__main__":
    asyncio.run(main())
