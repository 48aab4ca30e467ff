"""docker-compose.yml: the production stack's shape, and `docker compose config` when available."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from tests.conftest import REPO

COMPOSE = REPO / "docker-compose.yml"
WORKERS = {"worker-clone": "clone", "worker-perform": "perform", "worker-cleanup": "cleanup",
           "worker-maintenance": "maintenance"}


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


def test_compose_file_has_every_part_wired_from_the_environment():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert set(services) == {"mongo", "redis", "rabbitmq", "api", "beat", "flower", *WORKERS}
    assert "mongo-data:/data/db" in services["mongo"]["volumes"] and services["mongo"]["healthcheck"]
    redis_cmd = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and "--maxmemory-policy noeviction" in redis_cmd
    app_services = ["api", "beat", "flower", *WORKERS]
    images = {services[name]["image"] for name in app_services}
    assert len(images) == 1  # one image for every process
    for name, queue in WORKERS.items():
        cmd = services[name]["command"]
        assert cmd[cmd.index("-Q") + 1] == queue
    assert "beat" in services["beat"]["command"] and services["beat"]["deploy"]["replicas"] == 1
    api_env = services["api"]["environment"]
    # the API refuses to start without its secrets; nothing else is given them
    assert api_env["JWT_SECRET"].startswith("${JWT_SECRET:?")
    assert api_env["METRICS_TOKEN"].startswith("${METRICS_TOKEN:?")
    for name in app_services:
        env = services[name]["environment"]
        if name != "api":
            assert "JWT_SECRET" not in env and "METRICS_TOKEN" not in env, name
        assert env["REDIS_URL"].startswith("${REDIS_URL") and env["MONGO_URL"].startswith("${MONGO_URL")
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    perform_cmd = services["worker-perform"]["command"]
    assert "PERFORM_CONCURRENCY" in perform_cmd[perform_cmd.index("--concurrency") + 1]
    if _compose_available():  # the docker client's own validation, where it exists
        env = {"JWT_SECRET": "x" * 40, "METRICS_TOKEN": "m" * 20, "FLOWER_BASIC_AUTH": "ops:secret",
               "RABBITMQ_PASSWORD": "r" * 24, "PATH": "/usr/bin:/bin"}
        proc = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr


def test_compose_runs_the_broker_on_rabbitmq_and_keeps_redis_for_state():
    """Every Celery process (API as producer, workers, beat, Flower) talks to RabbitMQ by default;
    RabbitMQ keeps its data in a volume, answers a health check the app services wait for, and
    takes its password from the environment (no default); Redis stays for results and status."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    rabbit = services["rabbitmq"]
    assert rabbit["image"].startswith("rabbitmq:") and rabbit["image"].split(":")[1][0] in "34"
    assert "rabbitmq-data:/var/lib/rabbitmq" in rabbit["volumes"]
    assert "rabbitmq-diagnostics" in rabbit["healthcheck"]["test"]
    assert rabbit["hostname"] == "rabbitmq"  # the node name, and so its data, survive a re-create
    assert rabbit["environment"]["RABBITMQ_DEFAULT_PASS"].startswith("${RABBITMQ_PASSWORD:?")
    for name in ("api", "beat", "flower", *WORKERS):
        env = services[name]["environment"]
        broker = env["BROKER_URL"]
        # overridable, and by default the rabbitmq service with the password it was given
        assert broker.startswith("${BROKER_URL:-amqp://") and "@rabbitmq:5672/" in broker, name
        assert "${RABBITMQ_PASSWORD" in broker, name
        assert env["REDIS_URL"] == "${REDIS_URL:-redis://redis:6379/0}", name
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy", name
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
