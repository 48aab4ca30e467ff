"""The development stack: Redis, MongoDB-wire server, API, one worker per queue, beat, Flower.

`make run` calls `newvisions dev up`, which runs `run_stack()` in the foreground. The service
launchers are also used by the test suite, so tests start their stores the same way.
Children are supervised: Ctrl-C or SIGTERM stops every one of them (TERM, then KILL after a
grace period); each child also dies with this process (PR_SET_PDEATHSIG), so none is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import QUEUES

DATA_DIR = Path(".data")
STACK_ENV = DATA_DIR / "stack.env"
#: first worker metrics port when WORKER_METRICS_PORT is not set; the queues take 9101-9104
DEV_WORKER_METRICS_PORT = 9101


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM to the child if this process dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def spawn(argv: list[str], *, env: dict[str, str] | None = None, log_path: Path | None = None,
          cwd: str | None = None) -> subprocess.Popen:
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 - owned by the child
    return subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT if out else None,
                            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)


def stop_process(proc: subprocess.Popen, grace_s: float = 15.0) -> None:
    """TERM the child's whole process group, then KILL what is left after the grace period."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    # prefork children may outlive a parent that was killed: sweep the group once more
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def wait_until(check, timeout_s: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready in {timeout_s:.0f} s ({last!r})")


# ----------------------------------------------------------------- stores


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


def start_redis(data_dir: Path, port: int | None = None, *, appendonly: bool = True,
                log_path: Path | None = None, host: str = "127.0.0.1",
                launcher: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """Start redis-server listening on `host`; `launcher` is a prefix that runs it elsewhere
    (the multi-host tests run it in a network namespace: `ip netns exec NAME`)."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = spawn([
        *launcher, "redis-server", "--port", str(port), "--bind", host,
        # another host's address is the caller's choice (tests/hosts), on a private network
        "--protected-mode", "yes" if host == "127.0.0.1" else "no", "--dir", str(data_dir.resolve()),
        "--save", "", "--appendonly", "yes" if appendonly else "no", "--maxmemory-policy", "noeviction",
        "--daemonize", "no", "--logfile", "",
    ], log_path=log_path)
    url = f"redis://{host}:{port}/0"
    wait_until(lambda: redis_answers(url), 20, "redis-server", proc)
    return proc, url


def amqp_answers(url: str) -> bool:
    """Whether a RabbitMQ node takes an AMQP login at `url` (amqp://user:pass@host:port/vhost)."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=1, transport_options={"max_retries": 0}) as conn:
            conn.connect()
            return conn.connected
    except Exception:  # noqa: BLE001
        return False


def rabbitmq_password_hash(password: str) -> str:
    """What a RabbitMQ definitions file holds for a password (rabbit_password_hashing_sha256:
    base64 of a 4-byte salt followed by sha256(salt + password))."""
    import base64
    import hashlib

    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def rabbitmq_server_bin() -> str:
    """The rabbitmq-server script to run as the calling user. Debian's /usr/sbin/rabbitmq-server
    is a wrapper that switches to the `rabbitmq` user and its /var/lib/rabbitmq; the script it
    wraps runs the node with the data directories we give it."""
    for candidate in ("/usr/lib/rabbitmq/bin/rabbitmq-server", shutil.which("rabbitmq-server")):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server)")


def epmd_bin() -> str:
    found = shutil.which("epmd") or next(iter(sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))), None)
    if not found:
        raise RuntimeError("epmd (Erlang) is not installed; it comes with rabbitmq-server")
    return str(found)


@dataclass
class RabbitMQ:
    """A private RabbitMQ node: its own data directory, AMQP port, distribution port and epmd, so
    it never meets a system RabbitMQ (5672, 25672) or the system epmd (4369). `start()` again
    after `stop()` is the same node with the same data (quorum queues keep their messages).

    `wrap` prefixes every command (e.g. `["ip", "netns", "exec", "store"]` to run the node in a
    network namespace); `host` is the address it listens on and `connect_host` the one clients
    and the readiness check use (the same unless `host` is 0.0.0.0)."""

    data_dir: Path
    port: int = 0
    dist_port: int = 0
    epmd_port: int = 0
    host: str = "127.0.0.1"
    connect_host: str = ""
    user: str = "nv"
    password: str = ""
    vhosts: tuple[str, ...] = ("/",)
    wrap: tuple[str, ...] = ()
    nodename: str = ""
    log_path: Path | None = None
    procs: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.port = self.port or free_port()
        self.dist_port = self.dist_port or free_port()
        self.epmd_port = self.epmd_port or free_port()
        self.connect_host = self.connect_host or ("127.0.0.1" if self.host == "0.0.0.0" else self.host)
        self.password = self.password or secrets.token_urlsafe(16)
        self.nodename = self.nodename or f"nvtest-{secrets.token_hex(4)}@localhost"

    def url(self, vhost: str = "/") -> str:
        from urllib.parse import quote

        return f"amqp://{self.user}:{quote(self.password, safe='')}@{self.connect_host}:{self.port}/{quote(vhost, safe='')}"

    def _write_config(self) -> dict[str, str]:
        import json

        d = self.data_dir
        d.mkdir(parents=True, exist_ok=True)
        (d / "definitions.json").write_text(json.dumps({
            "users": [{"name": self.user, "password_hash": rabbitmq_password_hash(self.password),
                       "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}],
            "vhosts": [{"name": v} for v in self.vhosts],
            "permissions": [{"user": self.user, "vhost": v, "configure": ".*", "write": ".*", "read": ".*"}
                            for v in self.vhosts],
        }))
        (d / "rabbitmq.conf").write_text(
            f"load_definitions = {d / 'definitions.json'}\n"
            "log.console = false\nlog.file.level = info\n"
            # a test machine's disk may be nearly full; the default alarm (50 MB) would block publishers
            "disk_free_limit.absolute = 1MB\n")
        (d / "enabled_plugins").write_text("[].\n")
        (d / "rabbitmq-env.conf").write_text("")  # never the system's /etc/rabbitmq/rabbitmq-env.conf
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(d),  # the Erlang cookie lives here
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(d / "plugins-expand"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"), "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_NODENAME": self.nodename, "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port), "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self, timeout_s: float = 90) -> str:
        env = self._write_config()
        # our own epmd, a child we stop: one the node started by itself would daemonize and stay
        epmd = spawn([*self.wrap, epmd_bin(), "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                     env=env, log_path=self.log_path)
        self.procs = [epmd]
        node = spawn([*self.wrap, rabbitmq_server_bin()], env=env, log_path=self.log_path, cwd=str(self.data_dir))
        self.procs.append(node)
        try:
            wait_until(lambda: amqp_answers(self.url(self.vhosts[0])), timeout_s, "rabbitmq-server", node)
        except Exception:
            self.stop()
            raise
        return self.url(self.vhosts[0])

    def stop(self) -> None:
        for proc in reversed(self.procs):  # the node first, its epmd last
            stop_process(proc, grace_s=30)
        self.procs = []


def start_rabbitmq(data_dir: Path, port: int | None = None, *, vhosts: tuple[str, ...] = ("/",),
                   log_path: Path | None = None, **options) -> tuple[RabbitMQ, str]:
    """Start a private RabbitMQ node on free ports (or those given) with its data under
    `data_dir`; returns the node (`.stop()`, `.url(vhost)`) and the AMQP URL of its first vhost.
    Options are `RabbitMQ`'s fields (host, connect_host, wrap, user, password, dist_port, ...)."""
    node = RabbitMQ(data_dir, port=port or 0, vhosts=vhosts, log_path=log_path, **options)
    return node, node.start()


def mongo_answers(url: str) -> bool:
    import pymongo

    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=1000)
    try:
        return client.admin.command("ping").get("ok") == 1
    finally:
        client.close()


def embedded_mongo_url(port: int, host: str = "127.0.0.1") -> str:
    """The client URL of the embedded server, with retryable writes off: each write carrying a
    transaction number lands in the server's retryable-write registry, which slowed it about
    twentyfold as it filled (bench/README.md). Nothing relies on them: every exactly-once write
    is guarded by its own filter (a charge by the job id in the user's `charged_jobs`, a
    recording by the unique `job_id`). Production on mongod sets its own MONGO_URL and keeps
    them on."""
    return f"mongodb://{host}:{port}/?directConnection=true&retryWrites=false"


def start_mongo(data_dir: Path, port: int | None = None, *, log_path: Path | None = None,
                host: str = "127.0.0.1", launcher: tuple[str, ...] = (),
                standalone: bool = True) -> tuple[subprocess.Popen, str]:
    """Start the embedded MongoDB-wire server (SecantusDB) with its data under `data_dir`,
    listening on `host` (`launcher` as for start_redis).

    `standalone`: no single-node replica-set advertisement, hence no oplog. Advertised as a
    replica set (the server's default) it copies every written document into its oplog for
    change streams, which nothing here opens (the product has no `.watch(`, no transactions):
    a perform's ~460 kB recording insert was written twice, and each of its 13 commands paid
    for an oplog entry (figures in bench/README.md, "The hot path"). False only for
    benchmarks' baselines; production's mongod is a replica set of its own."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = spawn([*launcher, venv_bin("secantusd-py"), "--host", host, "--port", str(port),
                  "--storage-path", str(data_dir.resolve()), "--log-level", "WARNING",
                  *(["--standalone"] if standalone else [])], log_path=log_path)
    url = embedded_mongo_url(port, host)
    wait_until(lambda: mongo_answers(url), 60, "SecantusDB", proc)
    return proc, url


# ----------------------------------------------------------------- app processes


def worker_argv(queues: list[str] | tuple[str, ...], name: str, concurrency: int,
                loglevel: str = "INFO") -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", ",".join(queues),
            "-n", f"{name}@%h", "--concurrency", str(concurrency), "--loglevel", loglevel,
            "--without-mingle", "--without-gossip"]


def worker_metrics_ports(settings) -> dict[str, int]:
    """Each queue's worker node gets its own exporter port: WORKER_METRICS_PORT (or 9101 when it
    is not set at all) plus the queue's index. An explicit 0 turns the exporters off."""
    base = settings.worker_metrics_port if "worker_metrics_port" in settings.model_fields_set \
        else DEV_WORKER_METRICS_PORT
    return {queue: base + i for i, queue in enumerate(QUEUES)} if base else {}


def worker_metrics_env(queue: str, ports: dict[str, int]) -> dict[str, str]:
    """Prefork children write their metrics to files; each worker node needs its own directory
    (it is wiped when the node starts, which must not touch another node's files)."""
    if queue not in ports:
        return {}
    return {"WORKER_METRICS_PORT": str(ports[queue]),
            "PROMETHEUS_MULTIPROC_DIR": str((DATA_DIR / "metrics" / queue).resolve())}


@dataclass
class Stack:
    env: dict[str, str]
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def add(self, name: str, proc: subprocess.Popen) -> None:
        self.procs.append((name, proc))

    def stop(self) -> None:
        # app processes first (reverse start order), stores last so workers can ack on the way out
        for name, proc in reversed(self.procs):
            stop_process(proc)
            print(f"  stopped {name}", flush=True)


def _stack_env(overrides: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _write_stack_env(values: dict[str, str]) -> None:
    DATA_DIR.mkdir(exist_ok=True)
    tmp = STACK_ENV.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    tmp.chmod(0o600)
    tmp.replace(STACK_ENV)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    def handler(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def busy_ports(api_port: int, flower_port: int, metrics_ports: dict[str, int]) -> list[str]:
    """What is already listening where the stack wants to, each with how to choose another
    port; empty when everything is free."""
    problems = []
    for setting, port in (("API_PORT", api_port), ("FLOWER_PORT", flower_port)):
        if not port_is_free(port):
            problems.append(f"port {port} ({setting}) is already in use, perhaps by another `make run`; "
                            f"choose another, e.g. {setting}={port + 1} make run")
    taken = sorted(p for p in metrics_ports.values() if not port_is_free(p))
    if taken:
        first = min(metrics_ports.values())
        problems.append(f"port {', '.join(map(str, taken))} (WORKER_METRICS_PORT, {first} and the next "
                        f"{len(metrics_ports) - 1}) is already in use; choose another, e.g. "
                        f"WORKER_METRICS_PORT={first + 10} make run, or WORKER_METRICS_PORT=0 for no exporters")
    return problems


def run_stack(api_port: int | None = None, flower_port: int | None = None) -> int:
    """Start everything, print the URLs, supervise until interrupted; returns an exit code."""
    from shared.config import Settings

    settings = Settings()
    api_port = api_port or int(os.environ.get("API_PORT", settings.api_port))
    flower_port = flower_port or int(os.environ.get("FLOWER_PORT", settings.flower_port))
    metrics_ports = worker_metrics_ports(settings)
    # Checked before anything starts: a taken port would otherwise surface as a child that
    # exits at once, after the stores were already started.
    problems = busy_ports(api_port, flower_port, metrics_ports)
    if problems:
        print("New Visions dev stack: cannot start.", *(f"  {p}" for p in problems), sep="\n", file=sys.stderr,
              flush=True)
        return 2
    logs = DATA_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(env={})
    print("New Visions dev stack: starting (logs under .data/logs)", flush=True)
    with _signals_raise():
        try:
            redis_url = os.environ.get("REDIS_URL", "")
            if redis_url and redis_answers(redis_url):
                print(f"  redis: reusing {redis_url}", flush=True)
            else:
                if redis_url:
                    print(f"  redis: {redis_url} does not answer; starting our own", flush=True)
                proc, redis_url = start_redis(DATA_DIR / "redis", log_path=logs / "redis.log")
                stack.add("redis", proc)
                print(f"  redis: started {redis_url}", flush=True)
            mongo_url = os.environ.get("MONGO_URL", "")
            if mongo_url:
                print("  mongo: using MONGO_URL", flush=True)
            else:
                proc, mongo_url = start_mongo(DATA_DIR / "mongo", log_path=logs / "mongo.log")
                stack.add("mongo", proc)
                print(f"  mongo: started embedded SecantusDB {mongo_url}", flush=True)

            broker_url = os.environ.get("BROKER_URL", "")
            if broker_url:  # e.g. a RabbitMQ: deploy/README.md, "The broker: RabbitMQ"
                from kombu.utils.url import maybe_sanitize_url

                print(f"  broker: {maybe_sanitize_url(broker_url)} (BROKER_URL)", flush=True)
            else:
                print("  broker: redis (set BROKER_URL=amqp://... for RabbitMQ)", flush=True)
            flower_auth = os.environ.get("FLOWER_BASIC_AUTH") or f"admin:{secrets.token_urlsafe(12)}"
            env = _stack_env({"REDIS_URL": redis_url, "MONGO_URL": mongo_url,
                              "FLOWER_BASIC_AUTH": flower_auth, "API_PORT": str(api_port)})
            stack.env = env
            api_url = f"http://127.0.0.1:{api_port}"
            _write_stack_env({"REDIS_URL": redis_url, "MONGO_URL": mongo_url,
                              "MONGO_DB": env.get("MONGO_DB", settings.mongo_db), "API_URL": api_url,
                              "FLOWER_URL": f"http://127.0.0.1:{flower_port}",
                              **({"BROKER_URL": broker_url} if broker_url else {})})

            # indexes before the API takes traffic (the API also retries them itself)
            subprocess.run([sys.executable, "-m", "cli", "db", "init"], env=env, check=True)

            stack.add("api", spawn([sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
                                    "--port", str(api_port), "--no-access-log", "--no-proxy-headers"], env=env,
                                   log_path=logs / "api.log"))
            for queue in QUEUES:
                conc = settings.concurrency(queue)
                stack.add(f"worker:{queue}", spawn(worker_argv([queue], queue, conc),
                                                   env={**env, **worker_metrics_env(queue, metrics_ports)},
                                                   log_path=logs / f"worker-{queue}.log"))
            stack.add("beat", spawn([sys.executable, "-m", "celery", "-A", "workers.app", "beat",
                                     "--schedule", str(DATA_DIR / "celerybeat-schedule"), "--loglevel", "INFO"],
                                    env=env, log_path=logs / "beat.log"))
            stack.add("flower", spawn([sys.executable, "-m", "celery", "-A", "workers.app", "flower",
                                       "--address=127.0.0.1", f"--port={flower_port}",
                                       f"--basic-auth={flower_auth}", "--purge_offline_workers=60"],
                                      env=env, log_path=logs / "flower.log"))

            import httpx

            wait_until(lambda: httpx.get(f"{api_url}/health", timeout=1).status_code == 200, 60, "API",
                       dict(stack.procs)["api"])
            user = flower_auth.split(":", 1)[0]
            print("\nReady:", flush=True)
            print(f"  API docs : {api_url}/docs", flush=True)
            print(f"  Readiness: {api_url}/health/ready", flush=True)
            print(f"  Flower   : http://127.0.0.1:{flower_port}  (user '{user}', password "
                  f"{'from FLOWER_BASIC_AUTH' if os.environ.get('FLOWER_BASIC_AUTH') else repr(flower_auth.split(':', 1)[1])})",
                  flush=True)
            print(f"  Metrics  : {api_url}/metrics", flush=True)
            for queue, port in metrics_ports.items():
                print(f"             worker:{queue} http://127.0.0.1:{port}/metrics", flush=True)
            print("  Activation code: .venv/bin/newvisions codes create", flush=True)
            print("Press Ctrl-C to stop.\n", flush=True)
            while True:
                for name, proc in stack.procs:
                    if proc.poll() is not None:
                        print(f"{name} exited with code {proc.returncode}; stopping the stack "
                              f"(see .data/logs)", flush=True)
                        return 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\nStopping...", flush=True)
            return 0
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
            stack.stop()
            with contextlib.suppress(FileNotFoundError):
                STACK_ENV.unlink()
