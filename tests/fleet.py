"""Starts and stops the real things the integration tests run against.

A broker: reused when KAFKA_BOOTSTRAP is set or scripts/kafka reports one running,
else started with scripts/kafka up and stopped at the end. A cluster: brokers of
scripts/kafka in a KAFKA_HOME and on ports of their own, which a fault test may kill.
A fleet: real `faust -A bus worker` processes with their own web ports and data dirs,
under a fresh AGENTBUS_PREFIX so each test session starts from empty state.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = REPO / "scripts" / "kafka"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_kafka_port(nodes: int) -> int:
    """A first broker port for `scripts/kafka up --brokers nodes` whose every port is free:
    the brokers' (port..port+nodes-1) and the controllers' (port+1 for one node,
    port+100.. for three)."""
    offsets = [0, 1] if nodes == 1 else [*range(nodes), *range(100, 100 + nodes)]
    for _ in range(100):
        port = free_port()
        if port + max(offsets) <= 65535 and all(_bindable(port + o) for o in offsets[1:]):
            return port
    raise RuntimeError(f"no free ports for a {nodes}-node cluster")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Broker:
    bootstrap: str
    started_here: bool

    @classmethod
    def acquire(cls) -> Broker:
        if os.environ.get("KAFKA_BOOTSTRAP"):
            return cls(os.environ["KAFKA_BOOTSTRAP"], started_here=False)
        status = subprocess.run([str(KAFKA_SCRIPT), "status"], capture_output=True, text=True)
        if status.returncode == 0:
            out = subprocess.run([str(KAFKA_SCRIPT), "bootstrap"], capture_output=True, text=True, check=True)
            return cls(out.stdout.strip().splitlines()[-1], started_here=False)
        up = subprocess.run([str(KAFKA_SCRIPT), "up"], capture_output=True, text=True)
        if up.returncode != 0:
            raise RuntimeError(f"scripts/kafka up failed:\n{up.stdout}\n{up.stderr}")
        return cls(up.stdout.strip().splitlines()[-1], started_here=True)

    def release(self) -> None:
        if self.started_here:
            subprocess.run([str(KAFKA_SCRIPT), "down"], capture_output=True, check=False)


def shared_jars() -> Path:
    """Kafka's jars: KAFKA_LIBS, else those of the repository's own `scripts/kafka up`
    (fetched there once if missing), so a cluster in a KAFKA_HOME of its own fetches nothing."""
    return Path(os.environ.get("KAFKA_LIBS") or REPO / ".kafka" / "libs").resolve()


@dataclass
class KafkaCluster:
    """A scripts/kafka cluster in a KAFKA_HOME and on ports of its own (never KAFKA_BOOTSTRAP's
    broker): a fault test kills its nodes and brings them back on their data."""

    home: Path
    port: int
    nodes: int = 3
    bootstrap: str = ""

    def up(self) -> str:
        self.bootstrap = self._script("up", "--brokers", str(self.nodes))
        return self.bootstrap

    def start(self) -> str:
        """Start the nodes that are not running again, on their data."""
        return self._script("start")

    def pids(self) -> dict[int, int]:
        """Node number -> pid of each running node, as `scripts/kafka status` lists them."""
        env = self._env()
        done = subprocess.run([str(KAFKA_SCRIPT), "status"], env=env, capture_output=True, text=True)
        running: dict[int, int] = {}
        for line in done.stdout.splitlines():
            node, state, pid, _ = line.split()
            if state == "running":
                running[int(node.removeprefix("node"))] = int(pid.removeprefix("pid="))
        return running

    def kill(self, node: int) -> None:
        """kill -9 the node's broker process: no controlled shutdown, no leader hand-over."""
        os.kill(self.pids()[node], signal.SIGKILL)

    def node_port(self, node: int) -> int:
        return self.port + node - 1

    def down(self) -> None:
        subprocess.run([str(KAFKA_SCRIPT), "down"], env=self._env(), capture_output=True, check=False)

    def _script(self, *args: str) -> str:
        done = subprocess.run(
            [str(KAFKA_SCRIPT), *args], env=self._env(), capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"scripts/kafka {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout.strip().splitlines()[-1]

    def _env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "KAFKA_HOME": str(self.home),
            "KAFKA_PORT": str(self.port),
            "KAFKA_LIBS": str(shared_jars()),
            # A node restarted after kill -9 recovers every log first: slow on shared cores.
            "KAFKA_START_TIMEOUT": os.environ.get("KAFKA_START_TIMEOUT", "240"),
        }
        env.pop("KAFKA_BOOTSTRAP", None)  # that one is someone else's: never ours to kill
        return env


WORKER_COMMAND = (sys.executable, "-m", "faust", "-A", "bus", "worker", "-l", "info")


@dataclass
class Worker:
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Fleet:
    bootstrap: str
    root: Path
    size: int = 2
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    admin_key: str = field(default_factory=lambda: f"abk_admin.{uuid.uuid4().hex}")
    extra_env: dict[str, str] = field(default_factory=dict)
    base_port: int | None = None  # worker i listens on base_port + i; None: any free port
    workers: list[Worker] = field(default_factory=list)

    def env(self, worker: Worker) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP": self.bootstrap,
            "AGENTBUS_PREFIX": self.prefix,
            "AGENTBUS_ADMIN_KEY": self.admin_key,
            "AGENTBUS_DATA_DIR": str(worker.data_dir),
            "AGENTBUS_SSE_KEEPALIVE": "1",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def __enter__(self) -> Fleet:
        """Started; stopped when the block ends, however it ends."""
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, fresh_data: bool = False) -> None:
        if not self.workers:
            self.workers = [self._new_worker(i) for i in range(self.size)]
        for w in self.workers:
            if fresh_data and w.data_dir.exists():
                shutil.rmtree(w.data_dir)
            self._launch(w)
        for w in self.workers:
            self.wait_healthy(w)

    def _launch(self, w: Worker) -> None:
        w.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = w.log_path.open("ab")
        w.process = subprocess.Popen(
            [*WORKER_COMMAND, "--web-port", str(w.port), "--web-host", "127.0.0.1"],
            cwd=REPO,
            env=self.env(w),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, index: int) -> None:
        """kill -9: no shutdown, no final commit; the group notices after the session timeout."""
        w = self.workers[index]
        if w.process is not None:
            w.process.kill()
            w.process.wait()
            w.process = None

    def pause(self, index: int) -> None:
        """SIGSTOP: the worker freezes as in a long GC or a VM pause, sockets open."""
        w = self.workers[index]
        assert w.process is not None
        w.process.send_signal(signal.SIGSTOP)

    def resume(self, index: int) -> None:
        w = self.workers[index]
        assert w.process is not None
        w.process.send_signal(signal.SIGCONT)

    def terminate(self, index: int, timeout: float = 120.0) -> float:
        """SIGTERM (a graceful stop) and wait for the worker to exit: the seconds it took."""
        w = self.workers[index]
        assert w.process is not None
        started = time.monotonic()
        w.process.send_signal(signal.SIGTERM)
        w.process.wait(timeout=timeout)
        w.process = None
        return time.monotonic() - started

    def restart(self, index: int) -> None:
        """Start a killed worker again, on its port and data dir."""
        self.launch(index)
        self.wait_healthy(self.workers[index])

    def launch(self, index: int) -> None:
        """Start a killed worker again without waiting for it to be ready."""
        self._launch(self.workers[index])

    def add(self) -> int:
        """Start one more worker, on an empty data dir, and wait until it is ready: its index."""
        w = self._new_worker(len(self.workers))
        self.workers.append(w)
        self._launch(w)
        self.wait_healthy(w)
        return len(self.workers) - 1

    def running(self) -> list[int]:
        """Indexes of the workers whose process runs (paused ones included)."""
        return [i for i, w in enumerate(self.workers) if w.process is not None and w.process.poll() is None]

    def _new_worker(self, index: int) -> Worker:
        port = free_port() if self.base_port is None else self.base_port + index
        return Worker(port, self.root / f"worker-{index}", self.root / f"worker-{index}.log")

    def wait_healthy(self, w: Worker, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if w.process is not None and w.process.poll() is not None:
                raise RuntimeError(f"worker on :{w.port} exited\n{w.log_tail()}")
            try:
                with urllib.request.urlopen(f"{w.url}/healthz", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"worker on :{w.port} not healthy after {timeout}s\n{w.log_tail()}")

    def stop(self) -> None:
        for w in self.workers:
            if w.process is not None and w.process.poll() is None:
                w.process.send_signal(signal.SIGCONT)  # a paused worker would not hear SIGTERM
                w.process.send_signal(signal.SIGTERM)
        for w in self.workers:
            if w.process is None:
                continue
            try:
                w.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.process.kill()
                w.process.wait()
            w.process = None

    @property
    def urls(self) -> list[str]:
        return [w.url for w in self.workers]
