"""Schema benchmark: what binding a topic to a JSON Schema costs the publish path.

One run measures two things.

1. Validation cost per record, in-process (no HTTP). Validators are built and called
   exactly as the bus does (`bus.schemas.validation.validator_for`: draft 2020-12 with the
   format checker on; then `bus.schemas.validation.violations`). Two schemas, each with a
   payload that matches it:

     small   an object with 5 typed properties, 2 of them required (a ~100 B payload)
     large   an agent tool-call envelope: ~44 properties across nested objects and
             arrays, enums, patterns, numeric bounds and local $refs (a ~2 KB payload)

   Reported: microseconds per record (median of several timeit repeats, with the
   fastest and slowest repeat), and the schema and payload sizes.

2. Publish throughput, bound vs unbound, through the HTTP fleet against the same broker
   in the same run: POST /v1/publish/batch, S records per request, C concurrent clients
   going round-robin over the workers, N records per mode, each mode on its own fresh
   3-partition topic:

     unbound-small   no schema                       the small payload
     bound-small     bound to the small schema       the small payload
     unbound-large   no schema                       the large payload
     bound-large     bound to the large schema       the large payload

   A bound topic takes its subject at 'latest'. Before any load, each bound topic must
   refuse a non-matching record (422 schema_violation) on every worker, so a bound mode
   really validates. Each mode first sends a short, uncounted warm-up; afterwards the sum
   of the topic's Kafka end offsets must equal warm-up + N, otherwise the run fails
   loudly (exit status 1). Reported per mode: msgs/s, p50/p99 latency of one request and,
   for a bound mode, msgs/s as a ratio to the unbound mode with the same payload
   (target: bound >= 0.9x unbound). Every request has a timeout (--request-timeout, 30 s
   by default: 100 records of the large payload cost a worker ~0.1 s of validation, so
   with 32 clients on 2 cores a request can queue for seconds).

Topics are deleted at the end; the subjects (named uniquely per run) stay registered.

Needs a running broker and fleet: `scripts/kafka up && scripts/fleet up --workers 2`.

    .venv/bin/python bench/schemas.py [--workers URL,URL] [--bootstrap HOST:PORT]
        [--records N] [--concurrency C] [--batch-size S] [--request-timeout SECONDS]
        [--modes unbound-small,bound-small,...] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import secrets
import statistics
import sys
import time
import timeit
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from jsonschema import Draft202012Validator
from options import add_fleet_options, worker_urls

# bench/publish.py: found next to this file when run as `python bench/schemas.py`.
from publish import (
    MAX_BATCH,
    NAMESPACE,
    PARTITIONS,
    TENANT,
    WARMUP_RECORDS,
    BenchError,
    BusTopic,
    Run,
    Sender,
    admin_timeout,
    auth_headers,
    batch_body,
    check_health,
    check_mode,
    delete_topic,
    encode,
    http_sender,
    percentile,
    stored_records,
)

from bus.schemas.models import SchemaVersion
from bus.schemas.registry import check_schema, schema_id
from bus.schemas.validation import SchemaValidator, validator_for, violations

RUN_BUDGET_S = 120.0  # registration, probes, warm-ups and measurements; cleanup comes after
TIMEIT_REPEATS = 7  # each repeat runs for at least 0.2 s (timeit's autorange)
TARGET_RATIO = 0.9  # bound msgs/s over unbound msgs/s, same payload
BATCH_PATH = "/v1/publish/batch"


@dataclass(frozen=True)
class Config:
    workers: list[str]
    bootstrap: str
    records: int
    concurrency: int
    batch_size: int
    request_timeout: float
    json_out: str | None
    modes: tuple[str, ...] = ()  # () is every mode


@dataclass(frozen=True)
class Case:
    """A schema, a payload that matches it and one that does not."""

    name: str
    schema: dict[str, Any]
    payload: dict[str, Any]
    bad_payload: dict[str, Any]


@dataclass(frozen=True)
class Mode:
    name: str
    case: Case
    bound: bool


@dataclass(frozen=True)
class ValidationResult:
    schema: str
    properties: int
    schema_bytes: int
    payload_bytes: int
    us_per_record: float  # median repeat
    us_min: float
    us_max: float
    unchecked_formats: list[str]  # formats the schema names that this jsonschema cannot check


@dataclass(frozen=True)
class ModeResult:
    mode: str
    payload_bytes: int
    records: int
    seconds: float
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    ratio_to_unbound: float | None  # bound modes only
    errors: int


# --- schemas and payloads ---------------------------------------------------------------


def small_case() -> Case:
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "count": {"type": "integer", "minimum": 0},
            "ok": {"type": "boolean"},
            "score": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["id", "count"],
    }
    payload = {
        "id": "order-000123",
        "count": 3,
        "ok": True,
        "score": 0.87,
        "tags": ["alpha", "beta", "gamma"],
    }
    return Case("small", schema, payload, bad_payload={"id": 5})


def large_schema() -> dict[str, Any]:
    """An agent's tool call: who calls which tool with what arguments, in what context."""
    uuid = {"type": "string", "format": "uuid"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["call_id", "issued_at", "agent", "tool", "arguments", "context"],
        "properties": {
            "call_id": uuid,
            "trace_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "parent_call_id": {"type": ["string", "null"], "format": "uuid"},
            "issued_at": {"type": "string", "format": "date-time"},
            "agent": {"$ref": "#/$defs/agent"},
            "tool": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "version"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{2,63}$"},
                    "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
                    "kind": {"enum": ["function", "retrieval", "code", "browser"]},
                    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 600_000},
                },
            },
            "arguments": {
                "type": "object",
                "required": ["query", "max_results"],
                "properties": {
                    "query": {"type": "string", "minLength": 1, "maxLength": 4096},
                    "language": {"enum": ["en", "de", "fr", "es", "ja"]},
                    "max_results": {"type": "integer", "minimum": 1, "maximum": 100},
                    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                    "filters": {"type": "array", "maxItems": 20, "items": {"$ref": "#/$defs/filter"}},
                    "sort": {
                        "type": "object",
                        "required": ["field"],
                        "properties": {
                            "field": {"type": "string"},
                            "order": {"enum": ["asc", "desc"]},
                        },
                    },
                },
            },
            "context": {
                "type": "object",
                "required": ["conversation_id", "messages"],
                "properties": {
                    "conversation_id": uuid,
                    "turn": {"type": "integer", "minimum": 0},
                    "messages": {"type": "array", "maxItems": 50, "items": {"$ref": "#/$defs/message"}},
                    "budget": {
                        "type": "object",
                        "required": ["max_tokens"],
                        "properties": {
                            "max_tokens": {"type": "integer", "minimum": 1, "maximum": 200_000},
                            "max_cost_usd": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                        },
                    },
                },
            },
            "priority": {"type": "integer", "minimum": 0, "maximum": 9},
            "retry": {
                "type": "object",
                "properties": {
                    "attempt": {"type": "integer", "minimum": 0, "maximum": 10},
                    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10},
                    "backoff_ms": {"type": "integer", "minimum": 0, "maximum": 60_000},
                },
            },
            "labels": {
                "type": "object",
                "maxProperties": 32,
                "propertyNames": {"pattern": "^[a-z][a-z0-9_.-]{0,62}$"},
                "additionalProperties": {"type": "string", "maxLength": 256},
            },
            "dry_run": {"type": "boolean"},
        },
        "$defs": {
            "agent": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "role"],
                "properties": {
                    "id": {"type": "string", "pattern": "^agent-[a-z0-9-]{1,40}$"},
                    "role": {"enum": ["planner", "solver", "critic", "executor"]},
                    "model": {"type": "string", "maxLength": 128},
                    "capabilities": {
                        "type": "array",
                        "uniqueItems": True,
                        "items": {"enum": ["search", "code", "browse", "math", "files"]},
                    },
                },
            },
            "filter": {
                "type": "object",
                "additionalProperties": False,
                "required": ["field", "op", "value"],
                "properties": {
                    "field": {"type": "string", "pattern": "^[a-z_][a-z0-9_.]*$"},
                    "op": {"enum": ["eq", "ne", "lt", "lte", "gt", "gte", "in", "contains"]},
                    "value": {"type": ["string", "number", "boolean", "array"]},
                },
            },
            "message": {
                "type": "object",
                "additionalProperties": False,
                "required": ["role", "content"],
                "properties": {
                    "role": {"enum": ["system", "user", "assistant", "tool"]},
                    "content": {"type": "string", "maxLength": 8192},
                    "tokens": {"type": "integer", "minimum": 0},
                    "name": {"type": "string"},
                },
            },
        },
    }


def large_payload() -> dict[str, Any]:
    sentence = "Find recent papers on consensus protocols for agent fleets and summarise them. "
    messages = [
        {"role": "system", "content": "You are a research planner. " * 6, "tokens": 42},
        {"role": "user", "content": sentence * 4, "tokens": 64},
        {"role": "assistant", "content": "Planning the search: " + sentence * 3, "tokens": 58},
        {"role": "tool", "name": "search_papers", "content": "12 results; " * 20, "tokens": 80},
    ]
    filters = [
        {"field": "year", "op": "gte", "value": 2022},
        {"field": "venue.kind", "op": "in", "value": ["conference", "journal"]},
        {"field": "open_access", "op": "eq", "value": True},
        {"field": "title", "op": "contains", "value": "consensus"},
    ]
    return {
        "call_id": "6f1c2b7e-3d4a-4c5b-9e8f-0a1b2c3d4e5f",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "parent_call_id": None,
        "issued_at": "2026-11-27T10:15:30.123Z",
        "agent": {
            "id": "agent-planner-7",
            "role": "planner",
            "model": "some-model-2026-10",
            "capabilities": ["search", "browse", "math"],
        },
        "tool": {"name": "search_papers", "version": "1.4.2", "kind": "retrieval", "timeout_ms": 30_000},
        "arguments": {
            "query": "consensus protocols for multi-agent systems, 2022 onwards",
            "language": "en",
            "max_results": 20,
            "temperature": 0.2,
            "filters": filters,
            "sort": {"field": "citations", "order": "desc"},
        },
        "context": {
            "conversation_id": "0e9d8c7b-6a5f-4e3d-8c2b-1a0f9e8d7c6b",
            "turn": 7,
            "messages": messages,
            "budget": {"max_tokens": 8000, "max_cost_usd": 0.5},
        },
        "priority": 3,
        "retry": {"attempt": 0, "max_attempts": 3, "backoff_ms": 500},
        "labels": {"team": "research", "env": "bench", "run.kind": "nightly"},
        "dry_run": False,
    }


def large_case() -> Case:
    payload = large_payload()
    bad = copy.deepcopy(payload)
    bad["tool"]["kind"] = "teleport"  # not in the enum
    return Case("large", large_schema(), payload, bad)


def count_properties(node: Any) -> int:
    """Property declarations anywhere in a schema, $defs included."""
    if isinstance(node, list):
        return sum(count_properties(n) for n in node)
    if not isinstance(node, dict):
        return 0
    own = len(node["properties"]) if isinstance(node.get("properties"), dict) else 0
    return own + sum(count_properties(v) for v in node.values())


def named_formats(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(named_formats(n) for n in node))
    if not isinstance(node, dict):
        return set()
    own = {node["format"]} if isinstance(node.get("format"), str) else set()
    return own.union(*(named_formats(v) for v in node.values()))


# --- 1. validation in-process -------------------------------------------------------------


def bus_validator(case: Case) -> SchemaValidator:
    """The validator a worker would use for this schema, built the way the worker builds it."""
    check_schema(case.schema)  # the registry's admission check: fail here, not at registration
    version = SchemaVersion(
        namespace=NAMESPACE,
        tenant=TENANT,
        subject=f"bench.{case.name}",
        version=1,
        schema_id=schema_id(case.schema),
        schema_=case.schema,
        created_at=datetime.now(UTC),
    )
    return validator_for(version)


def time_validation(case: Case) -> ValidationResult:
    validator = bus_validator(case)
    if found := violations(validator, case.payload):
        raise BenchError(f"the {case.name} payload breaks its own schema: {found[:3]}")
    if not violations(validator, case.bad_payload):
        raise BenchError(f"the bad {case.name} payload passes its schema")
    timer = timeit.Timer(lambda: violations(validator, case.payload))
    number, _ = timer.autorange()
    per_record = sorted(t / number * 1e6 for t in timer.repeat(repeat=TIMEIT_REPEATS, number=number))
    checkable = set(Draft202012Validator.FORMAT_CHECKER.checkers)
    return ValidationResult(
        schema=case.name,
        properties=count_properties(case.schema),
        schema_bytes=len(encode(case.schema)),
        payload_bytes=len(encode(case.payload)),
        us_per_record=round(statistics.median(per_record), 2),
        us_min=round(per_record[0], 2),
        us_max=round(per_record[-1], 2),
        unchecked_formats=sorted(named_formats(case.schema) - checkable),
    )


# --- 2. the bus API: subjects, bound topics, probes -------------------------------------


async def register_subject(
    session: aiohttp.ClientSession, worker: str, subject: str, schema: dict[str, Any]
) -> int:
    url = f"{worker}/v1/schemas/{NAMESPACE}/{TENANT}/{subject}/versions"
    async with session.post(url, json={"schema": schema}, timeout=admin_timeout()) as resp:
        answer = await resp.json(content_type=None)
        if resp.status not in (200, 201):
            raise BenchError(f"registering {subject}: HTTP {resp.status}: {answer}")
    return int(answer["version"])


async def create_topic(
    session: aiohttp.ClientSession, worker: str, name: str, subject: str | None
) -> BusTopic:
    """publish.create_topic, plus an optional schema binding at 'latest'."""
    spec: dict[str, Any] = {"namespace": NAMESPACE, "tenant": TENANT, "name": name, "partitions": PARTITIONS}
    if subject is not None:
        spec["schema_binding"] = {"subject": subject, "version": "latest"}
    async with session.post(f"{worker}/v1/topics", json=spec, timeout=admin_timeout()) as resp:
        answer = await resp.json(content_type=None)
        if resp.status != 201:
            raise BenchError(f"creating topic {name}: HTTP {resp.status}: {answer}")
    return BusTopic(f"{NAMESPACE}/{TENANT}/{name}", answer["kafka_topic"], answer["partitions"])


async def expect_refusal(
    session: aiohttp.ClientSession, workers: list[str], topic: BusTopic, bad: dict[str, Any]
) -> None:
    """Every worker must refuse a non-matching record on a bound topic, producing nothing."""
    body = {"records": [{"topic": topic.ref, "key": "probe", "payload": bad}]}
    for w in workers:
        async with session.post(w + BATCH_PATH, json=body) as resp:
            answer = await resp.json(content_type=None)
        error = answer.get("error") if isinstance(answer, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        if resp.status != 422 or code != "schema_violation":
            raise BenchError(f"{w} took a bad record on {topic.ref}: HTTP {resp.status}: {answer}")


# --- 2. driving load --------------------------------------------------------------------


async def drive(send: Sender, first: int, total: int, cfg: Config) -> Run:
    """publish.drive with this run's request timeout: records [first, first + total)."""
    chunks = iter(range(first, first + total, cfg.batch_size))  # shared: each chunk goes to one lane
    run = Run(seconds=0.0)

    async def lane() -> None:
        for start in chunks:
            count = min(cfg.batch_size, first + total - start)
            began = time.perf_counter()
            try:
                await asyncio.wait_for(send(start, count), cfg.request_timeout)
            # ValueError: a proxy or crash page that is not JSON.
            except (BenchError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                run.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            run.latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(cfg.concurrency)))
    run.seconds = time.perf_counter() - began
    return run


async def measure(send: Sender, cfg: Config) -> Run:
    """An uncounted warm-up, then the measured N records."""
    warmup = await drive(send, 0, WARMUP_RECORDS, cfg)
    if warmup.errors:
        raise BenchError(f"warm-up failed: {warmup.errors[0]}")
    return await drive(send, WARMUP_RECORDS, cfg.records, cfg)


def summarise(mode: Mode, cfg: Config, run: Run) -> ModeResult:
    return ModeResult(
        mode=mode.name,
        payload_bytes=len(encode(mode.case.payload)),
        records=cfg.records,
        seconds=round(run.seconds, 3),
        msgs_per_s=round(cfg.records / run.seconds, 1),
        p50_ms=round(percentile(run.latencies, 50) * 1000, 2),
        p99_ms=round(percentile(run.latencies, 99) * 1000, 2),
        ratio_to_unbound=None,
        errors=len(run.errors),
    )


def with_ratios(results: list[ModeResult], modes: list[Mode]) -> list[ModeResult]:
    """Each bound mode's msgs/s over the unbound mode's with the same payload."""
    unbound = {m.case.name: r.msgs_per_s for m, r in zip(modes, results, strict=True) if not m.bound}
    return [
        _ratio(r, unbound[m.case.name]) if m.bound and m.case.name in unbound else r
        for m, r in zip(modes, results, strict=True)
    ]


def _ratio(result: ModeResult, baseline: float) -> ModeResult:
    ratio = round(result.msgs_per_s / baseline, 3) if baseline else None
    return ModeResult(**{**asdict(result), "ratio_to_unbound": ratio})


async def run_modes(
    cfg: Config, session: aiohttp.ClientSession, modes: list[Mode], topics: dict[str, BusTopic]
) -> tuple[list[ModeResult], list[str]]:
    """Warm up, measure and verify each mode in turn; returns results and problems."""
    consumer = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        results: list[ModeResult] = []
        problems: list[str] = []
        for mode in modes:
            topic = topics[mode.name]
            send = http_sender(session, cfg.workers, BATCH_PATH, batch_body(topic, mode.case.payload))
            run = await measure(send, cfg)
            stored = await stored_records(consumer, topic)
            problems += check_mode(mode.name, run, stored, WARMUP_RECORDS + cfg.records)
            results.append(summarise(mode, cfg, run))
        return with_ratios(results, modes), problems
    finally:
        await consumer.stop()


async def set_up(
    session: aiohttp.ClientSession, cfg: Config, modes: list[Mode], suffix: str, topics: dict[str, BusTopic]
) -> None:
    """Register the subjects, create one topic per mode (into `topics`), probe the bound ones."""
    worker = cfg.workers[0]
    subjects: dict[str, str] = {}
    for case in {m.case.name: m.case for m in modes}.values():
        subjects[case.name] = f"bench.{case.name}-{suffix}"
        await register_subject(session, worker, subjects[case.name], case.schema)
    for mode in modes:
        subject = subjects[mode.case.name] if mode.bound else None
        topics[mode.name] = await create_topic(session, worker, f"sch-{suffix}-{mode.name}", subject)
    for mode in modes:
        if mode.bound:
            await expect_refusal(session, cfg.workers, topics[mode.name], mode.case.bad_payload)


async def bench_publish(cfg: Config, modes: list[Mode]) -> tuple[list[ModeResult], list[str]]:
    suffix = secrets.token_hex(3)  # fresh subjects and topics per run, so reruns never collide
    # The pool must hold a connection per concurrent client, or requests queue client-side.
    connector = aiohttp.TCPConnector(limit=cfg.concurrency * 2)
    timeout = aiohttp.ClientTimeout(total=cfg.request_timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=auth_headers()) as session:
        await check_health(session, cfg.workers)
        topics: dict[str, BusTopic] = {}
        try:
            async with asyncio.timeout(RUN_BUDGET_S):
                await set_up(session, cfg, modes, suffix, topics)
                return await run_modes(cfg, session, modes, topics)
        except TimeoutError:
            raise BenchError(f"the run took over {RUN_BUDGET_S:.0f} s; gave up") from None
        finally:
            for topic in topics.values():
                await delete_topic(session, cfg.workers[0], topic)


# --- inputs and output ------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_fleet_options(p)
    p.add_argument("--records", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--request-timeout", type=float, default=30.0, help="seconds, per HTTP request")
    p.add_argument(
        "--modes",
        default=",".join(MODE_NAMES),
        help="comma-separated modes to run, to profile one (a ratio needs its unbound mode in the run)",
    )
    a = p.parse_args(argv)
    workers = worker_urls(a.workers)
    if not workers:
        p.error("--workers needs at least one URL")
    if a.records < 1 or a.concurrency < 1 or a.request_timeout <= 0:
        p.error("--records and --concurrency must be >= 1, --request-timeout > 0")
    if not 1 <= a.batch_size <= MAX_BATCH:
        p.error(f"--batch-size must be between 1 and {MAX_BATCH}")
    wanted = {m.strip() for m in a.modes.split(",")}
    if not wanted or wanted - set(MODE_NAMES):
        p.error(f"--modes takes a comma-separated subset of {','.join(MODE_NAMES)}")
    modes = tuple(m for m in MODE_NAMES if m in wanted)
    return Config(
        workers, a.bootstrap, a.records, a.concurrency, a.batch_size, a.request_timeout, a.json_out, modes
    )


def print_validation(results: list[ValidationResult], batch_size: int) -> None:
    print("Validation in-process: bus.schemas.validation.violations, draft 2020-12, format checker on")
    header = (
        f"{'schema':<8}{'props':>6}{'schema B':>10}{'payload B':>11}"
        f"{'us/record':>11}{'min':>9}{'max':>9}{f'us/batch of {batch_size}':>18}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.schema:<8}{r.properties:>6}{r.schema_bytes:>10}{r.payload_bytes:>11}"
            f"{r.us_per_record:>11.2f}{r.us_min:>9.2f}{r.us_max:>9.2f}{r.us_per_record * batch_size:>18.0f}"
        )
    for r in results:
        if r.unchecked_formats:
            print(f"note: {r.schema} names formats this jsonschema cannot check: {r.unchecked_formats}")


def print_publish(results: list[ModeResult], cfg: Config) -> None:
    print(
        f"\nPublish: {BATCH_PATH}, {cfg.batch_size} records/request, {cfg.concurrency} clients, "
        f"{len(cfg.workers)} workers, {cfg.records} records per mode (+{WARMUP_RECORDS} warm-up)"
    )
    header = (
        f"{'mode':<15}{'payload B':>10}{'records':>9}{'seconds':>9}{'msgs/s':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'x unbound':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = f"{r.ratio_to_unbound:.3f}" if r.ratio_to_unbound is not None else "-"
        print(
            f"{r.mode:<15}{r.payload_bytes:>10}{r.records:>9}{r.seconds:>9.2f}{r.msgs_per_s:>10.0f}"
            f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{ratio:>11}"
        )


def print_verdicts(results: list[ModeResult], validation: list[ValidationResult], modes: list[Mode]) -> None:
    """The target per payload, and what validation alone would cost at the unbound rate."""
    cost = {v.schema: v.us_per_record for v in validation}
    unbound = {m.case.name: r.msgs_per_s for m, r in zip(modes, results, strict=True) if not m.bound}
    print(f"\nTarget: bound >= {TARGET_RATIO}x unbound, same payload")
    for m, r in zip(modes, results, strict=True):
        if not m.bound or r.ratio_to_unbound is None:
            continue
        verdict = "met" if r.ratio_to_unbound >= TARGET_RATIO else "NOT MET"
        # CPU-seconds per second the fleet would spend validating at the unbound rate.
        share = unbound[m.case.name] * cost[m.case.name] / 1e6
        print(
            f"  {m.case.name:<6} {r.ratio_to_unbound:.3f}x  {verdict:<8} "
            f"(validation alone at the unbound rate: {share * 100:.0f}% of one core)"
        )


def write_json(path: str, cfg: Config, validation: list[ValidationResult], publish: list[ModeResult]) -> None:
    config: dict[str, Any] = {k: v for k, v in asdict(cfg).items() if k != "json_out"}
    config["warmup_records"] = WARMUP_RECORDS
    out = {
        "config": config,
        "target_ratio": TARGET_RATIO,
        "validation": [asdict(v) for v in validation],
        "publish": [asdict(r) for r in publish],
    }
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")


# --- the run ----------------------------------------------------------------------------


MODE_NAMES = ("unbound-small", "bound-small", "unbound-large", "bound-large")


def plan_modes(names: tuple[str, ...]) -> list[Mode]:
    cases = {"small": small_case(), "large": large_case()}
    return [Mode(n, cases[n.split("-")[1]], bound=n.startswith("bound")) for n in names]


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    modes = plan_modes(cfg.modes)
    try:
        validation = [time_validation(c) for c in {m.case.name: m.case for m in modes}.values()]
        print_validation(validation, cfg.batch_size)
        results, problems = asyncio.run(bench_publish(cfg, modes))
    except (BenchError, KafkaError, TimeoutError) as exc:
        print(f"\n!!! BENCHMARK ABORTED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print_publish(results, cfg)
    print_verdicts(results, validation, modes)
    if cfg.json_out:
        write_json(cfg.json_out, cfg, validation, results)
    if problems:
        print("\n!!! BENCHMARK FAILED: sends failed or records are missing !!!", file=sys.stderr)
        for p in problems:
            print(f"!!! {p}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
