"""A two-agent example on Agentbus: a planner hands out tasks, a solver answers them.

Both are agents of the bus written with bus.sdk.faust_agent's decorator (built on the
agentbus-client package), run by one Faust app: when it starts they register (with their
capabilities) and heartbeat while it runs. The planner sends each task to the solver's
inbox through worker A; the solver's inbox is served through worker B, and what its
handler returns goes back to the planner's inbox as the answer. The planner matches
answers to tasks by correlation id and stops the app
once every task is answered. Every message crosses real Kafka (the shared inbox topic).

    python examples/planner_solver.py [--a URL] [--b URL] [--tasks N] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import time
import uuid
from pathlib import Path

import faust
from agentbus_client.models import InboxMessage
from pydantic import BaseModel, JsonValue

from bus.sdk.faust_agent import bus_agent

NAMESPACE, TENANT = "demo", "acme"
REPO = Path(__file__).resolve().parent.parent
ADD = {
    "name": "add",
    "description": "Adds up a list of numbers",
    "input_schema": {
        "type": "object",
        "properties": {"numbers": {"type": "array", "items": {"type": "number"}}},
        "required": ["numbers"],
    },
    "output_schema": {"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]},
}


class Task(BaseModel):
    numbers: list[int]


class Answer(BaseModel):
    sum: int


def api_key() -> str:
    """The key to send: AGENTBUS_KEY, else the admin key scripts/fleet keeps in .data/admin-key."""
    key = os.environ.get("AGENTBUS_KEY")
    if not key:
        path = REPO / ".data" / "admin-key"
        key = path.read_text().strip() if path.exists() else ""
    return key


def build(args: argparse.Namespace) -> faust.App:
    app = faust.App(
        "agentbus-example-planner-solver",
        broker=f"kafka://{args.bootstrap}",
        datadir=str(REPO / ".data" / "example"),
        store="memory://",
        web_enabled=False,  # the bus's workers use the usual Faust web ports
    )
    key = api_key()
    sent: dict[str, tuple[list[int], float]] = {}  # task id -> (numbers, when sent)
    latencies: list[float] = []
    all_answered = asyncio.Event()

    @bus_agent(
        app,
        url=args.b,
        key=key,
        namespace=NAMESPACE,
        tenant=TENANT,
        agent_id="solver",
        description="Answers arithmetic tasks",
        capabilities=[ADD],
        heartbeat_interval_ms=2_000,
    )
    async def solver(message: InboxMessage) -> JsonValue:
        answer = Answer(sum=sum(Task.model_validate(message.payload).numbers))
        print(f"  solver   <- task {message.correlation_id} from {message.from_}, answered {answer.sum}")
        return answer.model_dump()

    @bus_agent(
        app,
        url=args.a,
        key=key,
        namespace=NAMESPACE,
        tenant=TENANT,
        agent_id="planner",
        description="Hands out arithmetic tasks",
        heartbeat_interval_ms=2_000,
    )
    async def planner(message: InboxMessage) -> None:
        task = sent.pop(message.correlation_id or "", None)
        if task is None:  # an answer to an earlier run's task: acked and ignored
            print(f"  planner  <- an old answer ({message.correlation_id}), ignored")
            return None
        numbers, at = task
        latencies.append(time.monotonic() - at)
        answer = Answer.model_validate(message.payload)
        print(f"  planner  <- {numbers} sum to {answer.sum} ({latencies[-1] * 1000:.0f} ms round trip)")
        if not sent:
            all_answered.set()
        return None

    @app.task  # type: ignore[untyped-decorator]
    async def plan() -> None:
        await planner.registered.wait()
        await solver.registered.wait()
        for _ in range(args.tasks):
            task_id = uuid.uuid4().hex[:8]
            numbers = [random.randint(1, 100) for _ in range(3)]
            sent[task_id] = (numbers, time.monotonic())
            receipt = await planner.send("solver", Task(numbers=numbers).model_dump(), correlation_id=task_id)
            print(
                f"  planner  -> solver: task {task_id} {numbers} "
                f"(inbox partition {receipt.partition}, offset {receipt.offset})"
            )
        await asyncio.wait_for(all_answered.wait(), timeout=60)
        mean = sum(latencies) / len(latencies)
        print(
            f"\n{args.tasks} tasks answered through the agents' inboxes; mean round trip {mean * 1000:.0f} ms"
        )
        os.kill(os.getpid(), signal.SIGTERM)  # stop the app as Ctrl-C would (agents release their inboxes)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--a", default="http://127.0.0.1:6066", help="worker the planner uses")
    parser.add_argument("--b", default="http://127.0.0.1:6067", help="worker the solver uses")
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    args = parser.parse_args()
    (REPO / ".data").mkdir(exist_ok=True)
    log = REPO / ".data" / "planner_solver.log"
    print(f"running the planner and the solver in one Faust app (its log: {log.relative_to(REPO)})")
    worker = faust.Worker(build(args), loglevel="info", logfile=str(log), redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
