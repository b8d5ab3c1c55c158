"""What scripts/bench needs from the machine: is it quiet, which commit runs, and the
broker and fleet a run starts for itself.

A run's own broker lives in a KAFKA_HOME of its own (sharing the jars through
KAFKA_LIBS) on free ports, and its fleet in an AGENTBUS_FLEET_DIR of its own under a
fresh AGENTBUS_PREFIX, so `scripts/kafka down` and `scripts/fleet down` with the run's
environment stop exactly what the run started and nothing else.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from suite.summary import LoadAverage

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
FLEET_SIZE = 2
DEFAULT_WEB_PORT = 6066  # faust's, when a worker's command line names none
START_TIMEOUT_S = 600.0  # `scripts/kafka up` may fetch the jars first
STOP_TIMEOUT_S = 120.0  # `scripts/fleet down` waits 30 s per worker before SIGKILL
# Settings the run sets for its own fleet; others found in the environment are reported.
OWN_SETTINGS = ("AGENTBUS_PREFIX", "AGENTBUS_BASE_PORT", "AGENTBUS_FLEET_DIR", "AGENTBUS_ADMIN_KEY_FILE")


class ServiceError(RuntimeError):
    """The broker or the fleet did not start."""


def load() -> LoadAverage:
    one, five, fifteen = os.getloadavg()
    return (one, five, fifteen)


# --- other workers and brokers ---------------------------------------------------------


@dataclass(frozen=True)
class BusProcess:
    """A `faust -A bus worker` or a Kafka broker running on this machine."""

    pid: int
    kind: str  # "worker" or "broker"
    port: int | None  # a worker's web port, a broker's PLAINTEXT listener

    def describe(self) -> str:
        return f"{self.kind} pid {self.pid}" + (f" on :{self.port}" if self.port else "")


@dataclass(frozen=True)
class Ours:
    """The processes a run uses: started by it (pids) or given to it (ports)."""

    pids: frozenset[int] = frozenset()
    worker_ports: frozenset[int] = frozenset()
    broker_ports: frozenset[int] = frozenset()

    def owns(self, p: BusProcess) -> bool:
        ports = self.worker_ports if p.kind == "worker" else self.broker_ports
        return p.pid in self.pids or p.port in ports


def is_bus_worker(args: list[str]) -> bool:
    """`faust -A bus worker`, `python -m faust --app=bus worker ...`."""
    faust = any(Path(a).name == "faust" for a in args)
    pairs = itertools.pairwise(args)
    app = any(a in ("-A", "--app") and b == "bus" for a, b in pairs) or bool(
        {"-Abus", "--app=bus"} & set(args)
    )
    return faust and app and "worker" in args


def option(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def listener_port(config: str) -> int | None:
    """The PLAINTEXT listener's port in a broker's server.properties text."""
    found = re.search(r"^listeners=.*?PLAINTEXT://[^:,]*:(\d+)", config, re.MULTILINE)
    return int(found.group(1)) if found else None


def parse_ps(text: str, read: Callable[[str], str | None]) -> list[BusProcess]:
    """Workers and brokers in `ps -o pid=,args=` output; `read` gives a broker's config."""
    found = []
    for line in text.splitlines():
        pid, _, command = line.strip().partition(" ")
        args = command.split()
        if not pid.isdigit() or not args:
            continue
        if is_bus_worker(args):
            port = option(args, "--web-port")
            found.append(
                BusProcess(int(pid), "worker", int(port) if port and port.isdigit() else DEFAULT_WEB_PORT)
            )
        elif "kafka.Kafka" in args:
            i = args.index("kafka.Kafka")
            config = read(args[i + 1]) if i + 1 < len(args) else None
            found.append(BusProcess(int(pid), "broker", listener_port(config) if config else None))
    return found


def read_text(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def bus_processes() -> list[BusProcess]:
    ps = subprocess.run(["ps", "-e", "-ww", "-o", "pid=,args="], capture_output=True, text=True, check=False)
    return parse_ps(ps.stdout, read_text)


def workers_on(port: int) -> list[int]:
    """The pids of the bus workers serving web port `port` on this machine."""
    return [p.pid for p in bus_processes() if p.kind == "worker" and p.port == port]


def others(ours: Ours) -> list[BusProcess]:
    """Workers and brokers running now that are not the run's."""
    return [p for p in bus_processes() if not ours.owns(p) and p.pid != os.getpid()]


@dataclass(frozen=True)
class QuietCheck:
    """Before a run: nothing else of the bus's kind runs, and the load is low."""

    load: LoadAverage
    others: list[BusProcess]
    max_load: float

    @property
    def quiet(self) -> bool:
        return self.load[0] <= self.max_load and not self.others

    def problems(self) -> list[str]:
        found = []
        if self.load[0] > self.max_load:
            found.append(f"the 1-minute load average is {self.load[0]:.2f}, over {self.max_load:.1f}")
        for kind in ("worker", "broker"):
            mine = [p.describe() for p in self.others if p.kind == kind]
            if mine:
                found.append(f"{len(mine)} other {kind}(s) running: {', '.join(mine)}")
        return found

    def describe(self) -> str:
        if self.quiet:
            return (
                f"Before the run the machine was quiet (1-min load {self.load[0]:.2f}, "
                "no other workers or brokers)."
            )
        return "Before the run the machine was **not quiet**: " + "; ".join(self.problems()) + "."


def ports_of(urls: Iterable[str]) -> frozenset[int]:
    ports = set()
    for url in urls:
        parts = urlsplit(url if "//" in url else f"//{url}")
        if parts.port:
            ports.add(parts.port)
    return frozenset(ports)


# --- the code being measured -------------------------------------------------------------


def commit(repo: Path, ignore: Iterable[Path] = ()) -> str:
    """`git rev-parse --short HEAD`, "+dirty" when tracked files differ from it. Files in
    `ignore` (the summary this run writes) do not count: they are not the code measured."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        excluded = [
            f":(exclude){p.resolve().relative_to(repo)}" for p in ignore if p.resolve().is_relative_to(repo)
        ]
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if changed else "")


# --- the run's own broker and fleet ------------------------------------------------------


def free_port_pair() -> int:
    """A free port whose next one is free too (a broker's controller, a second worker)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 1 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise ServiceError("no two consecutive free ports")


def shared_jars() -> Path:
    """The jars a plain `scripts/kafka up` uses (fetched there once if missing)."""
    if os.environ.get("KAFKA_LIBS"):
        return Path(os.environ["KAFKA_LIBS"]).resolve()
    return Path(os.environ.get("KAFKA_HOME") or REPO / ".kafka").resolve() / "libs"


@dataclass
class Endpoints:
    bootstrap: str
    workers: list[str]
    prefix: str
    key: str | None  # None: the benches find it themselves (AGENTBUS_KEY, .data/admin-key)


@dataclass
class Services:
    """The broker and fleet of a run: given, or started by `start` and stopped by `stop`."""

    run_dir: Path
    bootstrap: str | None = None
    workers: list[str] | None = None
    prefix: str | None = None
    log: Callable[[str], None] = print
    kafka_env: dict[str, str] | None = None  # set while the run's own broker may be running
    fleet_env: dict[str, str] | None = None  # set while the run's own fleet may be running
    started: list[str] = field(default_factory=list)

    def start(self) -> Endpoints:
        bootstrap = self.bootstrap or self.start_broker()
        if self.workers:
            prefix = self.prefix or os.environ.get("AGENTBUS_PREFIX", "agentbus")
            return Endpoints(bootstrap, self.workers, prefix, None)
        return self.start_fleet(bootstrap)

    def start_broker(self) -> str:
        home = self.run_dir / "kafka"
        home.mkdir(parents=True, exist_ok=True)
        port = free_port_pair()
        env = {
            **os.environ,
            "KAFKA_HOME": str(home),
            "KAFKA_PORT": str(port),
            "KAFKA_LIBS": str(shared_jars()),
        }
        env.pop("KAFKA_BOOTSTRAP", None)
        self.kafka_env = env  # before `up`: a failed start is stopped too
        self.log(f"starting the run's own broker on :{port} (KAFKA_HOME={home})")
        out = self.script("kafka", ["up"], env, START_TIMEOUT_S)
        self.started.append(f"broker on :{port}")
        return out.strip().splitlines()[-1]

    def start_fleet(self, bootstrap: str) -> Endpoints:
        base = free_port_pair()
        prefix = f"bench-{secrets.token_hex(3)}"
        key = f"abk_admin.{secrets.token_urlsafe(32)}"
        keyfile = self.run_dir / "admin-key"
        keyfile.touch(mode=0o600)
        keyfile.write_text(key + "\n")
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP": bootstrap,
            "AGENTBUS_PREFIX": prefix,
            "AGENTBUS_BASE_PORT": str(base),
            "AGENTBUS_FLEET_DIR": str(self.run_dir / "fleet"),
            "AGENTBUS_ADMIN_KEY_FILE": str(keyfile),
            # The workers run this tree's code, the commit the summary names.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        env.pop("AGENTBUS_ADMIN_KEY", None)
        self.fleet_env = env  # before `up`: a worker that did start is stopped too
        self.log(f"starting the run's own fleet on :{base} and :{base + 1} (prefix {prefix})")
        self.script("fleet", ["up", "--workers", str(FLEET_SIZE)], env, START_TIMEOUT_S)
        self.started.append(f"fleet of {FLEET_SIZE} on :{base}, :{base + 1}")
        workers = [f"http://127.0.0.1:{base + i}" for i in range(FLEET_SIZE)]
        return Endpoints(bootstrap, workers, prefix, key)

    def script(self, name: str, args: list[str], env: dict[str, str], timeout: float) -> str:
        try:
            done = subprocess.run(
                [str(SCRIPTS / name), *args],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(f"scripts/{name} {' '.join(args)} took over {timeout:.0f} s") from exc
        if done.returncode != 0:
            raise ServiceError(
                f"scripts/{name} {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
            )
        return done.stdout

    def ours(self) -> Ours:
        """The run's processes: its broker's and workers' pids, the given ones' ports."""
        pids: set[int] = set()
        for pidfile in [*(self.run_dir / "kafka").glob("node*/pid"), *(self.run_dir / "fleet").glob("*.pid")]:
            text = read_text(str(pidfile)) or ""
            if text.strip().isdigit():
                pids.add(int(text))
        brokers = ports_of((self.bootstrap or "").split(","))
        return Ours(frozenset(pids), ports_of(self.workers or []), brokers)

    def describe(self, endpoints: Endpoints) -> str:
        settings = sorted(k for k in os.environ if k.startswith("AGENTBUS_") and k not in OWN_SETTINGS)
        settings = [k for k in settings if "KEY" not in k]
        inherited = (
            f" Settings from the environment: {', '.join(settings)}." if settings and self.fleet_env else ""
        )
        if not self.started:
            return (
                f"Against the given broker `{endpoints.bootstrap}` and fleet {', '.join(endpoints.workers)}."
            )
        given = "" if "broker" in self.started[0] else f" on the given broker `{endpoints.bootstrap}`"
        return (
            f"The run started its own {' and '.join(self.started)}{given}, and stopped them after.{inherited}"
        )

    def stop(self) -> list[str]:
        """Stop what `start` started, the fleet first; the problems met, if any. Safe to call twice."""
        problems = []
        for name, env in (("fleet", self.fleet_env), ("kafka", self.kafka_env)):
            if env is None:
                continue
            self.log(f"stopping the run's own {'fleet' if name == 'fleet' else 'broker'}")
            try:
                self.script(name, ["down"], env, STOP_TIMEOUT_S)
            except ServiceError as exc:
                problems.append(str(exc))
                continue
            if name == "fleet":
                self.fleet_env = None
            else:
                self.kafka_env = None
        # The logs stay; the data (records, RocksDB tables) is disposable and large.
        for data in [
            *(self.run_dir / "kafka").glob("node*/data"),
            *(self.run_dir / "fleet").glob("worker-*/"),
        ]:
            if data.is_dir() and not problems:
                shutil.rmtree(data, ignore_errors=True)
        return problems
