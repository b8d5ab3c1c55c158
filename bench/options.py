"""The command-line options every bench shares: where the fleet and its broker are, and
where the results go. Defaults follow scripts/fleet and scripts/kafka (and their
environment variables), so a bench run beside them needs no options.

    from options import add_fleet_options, worker_urls   # as `python bench/NAME.py`
"""

from __future__ import annotations

import argparse
import os

__all__ = ["DEFAULT_WORKERS", "add_fleet_options", "worker_urls"]

DEFAULT_WORKERS = "http://127.0.0.1:6066,http://127.0.0.1:6067"


def add_fleet_options(
    p: argparse.ArgumentParser, *, workers: str = "comma-separated worker base URLs", prefix: bool = False
) -> None:
    """--workers (its help: workers), --bootstrap, --json-out, and --prefix when asked."""
    p.add_argument("--workers", default=DEFAULT_WORKERS, help=workers)
    p.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"), help="the fleet's broker"
    )
    if prefix:
        p.add_argument(
            "--prefix",
            default=os.environ.get("AGENTBUS_PREFIX", "agentbus"),
            help="the fleet's AGENTBUS_PREFIX (its internal topics are PREFIX-*)",
        )
    p.add_argument("--json-out", default=None, help="also write the results to this file")


def worker_urls(value: str) -> list[str]:
    """--workers as a list of base URLs without trailing slashes."""
    return [w.strip().rstrip("/") for w in value.split(",") if w.strip()]
