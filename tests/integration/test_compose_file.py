"""compose.yaml and the Dockerfile, validated by Debian's docker-compose (no Docker engine needed)."""
from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.servers import REPO, render_template
from tests.support import require_binary

SERVICES = {"order": "order_service", "invoicing": "invoicing_service", "shipping": "shipping_service"}
CONSUMERS = ("invoicing", "shipping")


SECRETS = {"FEED_TOKEN": "test-feed-token", "ADMIN_PASSWORD": "test admin password"}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`docker-compose config` on the repo's compose.yaml with only `env` (and PATH) in the environment."""
    binary = require_binary("docker-compose")
    return subprocess.run([binary, "--project-directory", str(REPO), "-f", str(REPO / "compose.yaml"), "config"],
                          capture_output=True, text=True, cwd=REPO, env={"PATH": "/usr/bin:/bin", **env})


@pytest.fixture(scope="module")
def compose() -> dict:
    """compose.yaml as docker-compose resolves it (validated, anchors merged, variables interpolated)."""
    result = compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_each_secret(missing):
    result = compose_config({name: value for name, value in SECRETS.items() if name != missing})
    assert result.returncode != 0 and missing in result.stderr


def test_every_service_and_nginx_get_the_secrets_and_the_repo_holds_no_default(compose):
    for name in SERVICES:
        environment = compose["services"][name]["environment"]
        assert {key: environment[key] for key in SECRETS} == SECRETS, name
    assert compose["services"]["nginx"]["environment"]["FEED_TOKEN"] == SECRETS["FEED_TOKEN"]
    text = (REPO / "compose.yaml").read_text()
    for key in SECRETS:
        assert re.search(rf"{key}: \$\{{{key}:\?", text), f"{key} must be required, without a default"


def _command(service: dict) -> list[str]:
    command = service["command"]
    return command if isinstance(command, list) else command.split()


OBSERVABILITY = {"prometheus", "grafana", "feed-cache-exporter"}


def test_compose_runs_postgres_the_three_services_nginx_and_the_observability_stack(compose):
    assert set(compose["services"]) == {"postgres", "nginx", *SERVICES, *OBSERVABILITY}


def test_every_service_has_a_healthcheck_and_waits_for_what_it_needs_to_be_healthy(compose):
    services = compose["services"]
    for name, service in services.items():
        if name not in ("grafana", "feed-cache-exporter"):
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    expected = {"order": {"postgres"}, "invoicing": {"postgres", "order"}, "shipping": {"postgres", "order"},
                "nginx": {"order", "invoicing", "shipping"}}
    for name, needs in expected.items():
        depends_on = {dep: how for dep, how in services[name]["depends_on"].items() if dep not in OBSERVABILITY}
        assert set(depends_on) == needs, name
        assert {dep["condition"] for dep in depends_on.values()} == {"service_healthy"}, name
    # nginx resolves its syslog server (the exporter) at start-up: it must exist by then.
    assert "feed-cache-exporter" in services["nginx"]["depends_on"]


def test_the_services_are_built_from_the_repo_and_served_by_gunicorn_with_the_repo_config(compose):
    for name, package in SERVICES.items():
        service = compose["services"][name]
        command = _command(service)
        assert service["build"]["context"] == str(REPO)
        assert command[0] == "gunicorn" and f"{package}.app:create_app()" in command, command
        config = command[command.index("--config") + 1]
        assert (REPO / config).is_file()
        healthcheck = " ".join(service["healthcheck"]["test"])
        assert "http://127.0.0.1:8000/health" in healthcheck


def test_every_follower_runs_one_gunicorn_worker_so_one_poller_per_instance(compose):
    for name in SERVICES:  # the order service follows the invoicing and shipping feeds
        command = _command(compose["services"][name])
        assert command[command.index("--workers") + 1] == "1", name


def test_scaled_services_publish_no_fixed_host_port_and_have_no_fixed_name(compose):
    for name in SERVICES:
        service = compose["services"][name]
        assert "ports" not in service, f"{name} publishes a host port: --scale {name}=2 would clash"
        assert "container_name" not in service


def test_only_nginx_is_published_on_port_8080(compose):
    ports = compose["services"]["nginx"]["ports"]
    assert [(int(p["published"]), int(p["target"])) for p in ports] == [(8080, 8080)]
    assert compose["services"]["nginx"]["environment"]["NGINX_PORT"] == "8080"


def test_the_order_service_reads_the_invoicing_and_shipping_feeds_through_nginx(compose):
    environment = compose["services"]["order"]["environment"]
    assert environment["INVOICING_FEED_URL"] == "http://nginx:8080/invoicing/feed"
    assert environment["SHIPPING_FEED_URL"] == "http://nginx:8080/shipping/feed"


def test_the_consumers_read_the_order_feed_through_nginx(compose):
    for name in CONSUMERS:
        assert compose["services"][name]["environment"]["ORDER_FEED_URL"] == "http://nginx:8080/order/feed"


def test_each_service_has_its_own_postgresql_database_created_by_the_init_script(compose):
    services = compose["services"]
    databases = set()
    for name in SERVICES:
        url = services[name]["environment"]["DATABASE_URL"]
        match = re.fullmatch(r"postgresql\+psycopg://atomshop:[^@]+@postgres:5432/(\w+)", url)
        assert match, url
        databases.add(match.group(1))
    assert len(databases) == 3, "the services must not share a database"

    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in postgres["volumes"])
    assert mounts.get("pgdata") == "/var/lib/postgresql/data", "the data must live in a named volume"
    assert "pgdata" in compose["volumes"]
    init_script = next(source for source, target in mounts.items() if target.startswith("/docker-entrypoint-initdb.d/"))
    created = set(re.findall(r"CREATE DATABASE (\w+)", Path(init_script).read_text()))
    assert created == databases
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_nginx_gets_the_repo_template_and_a_value_for_every_placeholder(compose):
    nginx = compose["services"]["nginx"]
    assert nginx["image"].startswith("nginx:")
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in nginx["volumes"])
    template = next(source for source, target in mounts.items()
                    if target.startswith("/etc/nginx/templates/") and target.endswith(".template"))
    assert template == str(REPO / "deploy" / "nginx" / "atomshop.conf.template")
    environment = nginx["environment"]
    rendered = render_template(Path(template).read_text(), environment)  # raises on a placeholder without a value
    for name in SERVICES:
        assert environment[f"{name.upper()}_UPSTREAM"] == f"{name}:8000"
    home = environment["ATOMSHOP_HOME"]
    assert mounts[str(REPO / "deploy" / "nginx" / "home")] == home
    assert f"root {home};" in rendered


def test_the_dockerfile_installs_the_project_and_runs_as_a_non_root_user():
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in dockerfile.splitlines() if line and not line.startswith("#")
                    and not line.startswith(" ")]
    assert instructions[0] == ["FROM", "python:3.11-slim"]
    users = [parts[1].strip() for parts in instructions if parts[0] == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    # Exactly the locked versions, then the project itself without resolving anything again.
    assert "pip install --require-hashes -r requirements/run.txt" in dockerfile
    assert "pip install --no-deps ." in dockerfile
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
    assert "deploy" not in ignored, "the gunicorn config lives in deploy/"


# What the code reads from the environment (common/config.py, the services, deploy/gunicorn.conf.py).
# os.environ reads, env_int/env_float, and a followed feed's URL variable (Follow("orders", "ORDER_FEED_URL", …)).
_ENV_READ = re.compile(r"""(?:environ(?:\.get)?\(|environ\[|env_(?:int|float)\(|Follow\(\s*["'][^"']+["'],)"""
                       r"""\s*["']([A-Z][A-Z0-9_]*)["']""")


def _variables_the_code_reads() -> set[str]:
    sources = [*REPO.glob("common/**/*.py"), *REPO.glob("*_service/*.py"), REPO / "deploy" / "gunicorn.conf.py"]
    return {name for path in sources for name in _ENV_READ.findall(path.read_text())}


def test_every_variable_compose_sets_on_a_service_is_one_the_code_reads(compose):
    known = _variables_the_code_reads()
    assert {"DATABASE_URL", "ORDER_FEED_URL", "INVOICING_FEED_URL", "SHIPPING_FEED_URL", "POLL_INTERVAL",
            "SECRET_KEY"} <= known
    for name in SERVICES:
        unknown = set(compose["services"][name]["environment"]) - known
        assert not unknown, f"{name}: compose sets {unknown}, which nothing reads (a typo?)"


def test_the_app_each_command_serves_exists(compose):
    dockerfile_cmd = re.search(r"^CMD (\[.*\])$", (REPO / "Dockerfile").read_text(), re.M).group(1)
    commands = {name: _command(compose["services"][name]) for name in SERVICES}
    commands["Dockerfile CMD"] = yaml.safe_load(dockerfile_cmd)
    for name, command in commands.items():
        module, call = command[-1].split(":")
        assert call == "create_app()", f"{name}: {command}"
        # Its schema comes from its migrations at start-up (tests/integration/test_service_migrations.py).
        assert callable(importlib.import_module(module).create_app), f"{name}: {command}"
