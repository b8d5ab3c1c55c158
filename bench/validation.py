"""Validation micro-benchmark: payloads validated per second, in-process, before and after
the compiled check.

  before      python-jsonschema alone, as the bus validated until the compiled check:
              `violations()` with a bare Draft202012Validator (format checker on)
  after       the bus now: `violations()` with `validator_for()`'s validator (jsonschema-rs
              gives the verdict, python-jsonschema lists the violations of a refused payload)
  rs-native   jsonschema-rs alone with its own formats, regexes and multipleOf: what the bus
              does NOT use (its verdicts differ from python-jsonschema's), shown for the price
              of keeping python-jsonschema's reading

The schemas and payloads are bench/schemas.py's: small (5 properties, ~90 B payload) and
large (an agent tool-call envelope: ~44 properties, formats, patterns, $refs, ~2 KB). Each
is timed with a payload that matches it and one that does not (a refused payload costs
python-jsonschema's listing of its violations, before and after alike).

Figures are the median of R timeit repeats (each at least ~0.2 s) and the best one; the
three modes' repeats take turns. The machine's load average is printed beside them: on
shared cores, compare before and after from the same run, not absolute rates across runs.

    .venv/bin/python bench/validation.py [--repeats R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import timeit
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

# bench/schemas.py: found next to this file when run as `python bench/validation.py`.
from schemas import Case, bus_validator, large_case, small_case

from bus.schemas.validation import violations


def rates(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, float]]:
    """Calls per second of each call: the median repeat and the best one. The repeats of the
    calls take turns, so that all of them see the same load on shared cores."""
    timers = {mode: timeit.Timer(call) for mode, call in calls.items()}
    numbers = {mode: timer.autorange()[0] for mode, timer in timers.items()}
    per_call: dict[str, list[float]] = {mode: [] for mode in calls}
    for _ in range(repeats):
        for mode, timer in timers.items():
            per_call[mode].append(timer.timeit(numbers[mode]) / numbers[mode])
    return {mode: (1 / statistics.median(t), 1 / min(t)) for mode, t in per_call.items()}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def measure(case: Case, repeats: int) -> list[tuple[str, str, float, float]]:
    before = Draft202012Validator(case.schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    after = bus_validator(case)
    native = jsonschema_rs.Draft202012Validator(case.schema, validate_formats=True)
    assert after.check is not None, f"the {case.name} schema should get the compiled check"
    assert violations(before, case.payload) == violations(after, case.payload) == []
    assert violations(before, case.bad_payload) == violations(after, case.bad_payload) != []
    rows: list[tuple[str, str, float, float]] = []
    for payload_name, payload in (("valid", case.payload), ("invalid", case.bad_payload)):
        calls: dict[str, Callable[[], Any]] = {
            "before": partial(violations, before, payload),
            "after": partial(violations, after, payload),
            "rs-native": partial(native.is_valid, payload),
        }
        for mode, (median, best) in rates(calls, repeats).items():
            rows.append((payload_name, mode, median, best))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    libraries = f"jsonschema {version('jsonschema')}, jsonschema-rs {version('jsonschema-rs')}"
    print(f"{libraries}, {os.cpu_count()} cores")
    print(
        f"{'schema':<7} {'payload':<8} {'mode':<10} {'validations/s':>14} {'best':>12} {'x before':>9}"
        "  load avg (1, 5, 15 min)"
    )
    for case in (small_case(), large_case()):
        rows = measure(case, args.repeats)
        baseline = {p: median for p, mode, median, _ in rows if mode == "before"}
        for payload_name, mode, median, best in rows:
            ratio = median / baseline[payload_name]
            print(
                f"{case.name:<7} {payload_name:<8} {mode:<10} {median:>14,.0f} {best:>12,.0f} "
                f"{ratio:>8.1f}x  {load()}"
            )


if __name__ == "__main__":
    main()
