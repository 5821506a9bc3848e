"""Deployment files: docker-compose, Dockerfiles, Prometheus config and alerts, Grafana.

No Docker engine is needed: the files are parsed and checked against each other and against the
code. Metric names come from the prometheus-client constructors in ``shared/`` and
``services/``, so an alert or a panel on a metric the code does not define fails here. When
``promtool`` is on PATH (Debian package ``prometheus``), the Prometheus config and rules are
also checked by it, the alert unit tests in ``deploy/prometheus/alerts.test.yml`` run, and every
dashboard query is parsed by it.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "clipfunnel-dashboard.json"
DOCKERFILE = ROOT / "Dockerfile"
GRAFANA_PROVISIONING = DEPLOY / "grafana" / "provisioning"

SERVICE_PORTS = {"catalog": 8001, "attribution": 8002}
REQUIRED_COMPOSE_SERVICES = {
    "postgres",
    "migrate-catalog",
    "migrate-attribution",
    "catalog",
    "attribution",
    "prometheus",
    "grafana",
}
# The metrics the service documents for operators, as exposed series names.
DOCUMENTED_SERIES = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "clipfunnel_events_received_total",
    "clipfunnel_orders_received_total",
    "clipfunnel_attribution_seconds_bucket",
    "clipfunnel_catalog_sync_lag_seconds",
    "clipfunnel_catalog_changes_total",
}
# Series Prometheus itself adds to every scrape that the rules may use.
PROMETHEUS_SERIES = {"up"}
SEVERITIES = {"critical", "warning", "info"}


def load_yaml(path: Path) -> Any:
    with path.open() as handle:
        return yaml.safe_load(handle)


# ---------------------------------------------------------------------------------------------
# Metric names: defined by the code, referenced by PromQL
# ---------------------------------------------------------------------------------------------

_METRIC_CLASSES = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}


def _exposed_series(kind: str, name: str) -> set[str]:
    """The series names prometheus-client exposes for one metric (text format 0.0.4)."""
    if kind == "Counter":
        base = name.removesuffix("_total")
        return {f"{base}_total", f"{base}_created"}
    if kind == "Histogram":
        return {f"{name}_bucket", f"{name}_count", f"{name}_sum", f"{name}_created"}
    if kind == "Summary":
        return {name, f"{name}_count", f"{name}_sum", f"{name}_created"}
    if kind == "Info":
        return {f"{name}_info"}
    return {name}  # Gauge, Enum


@cache
def code_metric_series() -> frozenset[str]:
    """Every series name the code's Counter/Gauge/Histogram/... constructors expose."""
    series: set[str] = set()
    for package in ("shared", "services"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                kind = (
                    func.id
                    if isinstance(func, ast.Name)
                    else func.attr
                    if isinstance(func, ast.Attribute)
                    else None
                )
                first = node.args[0]
                if (
                    kind in _METRIC_CLASSES
                    and isinstance(first, ast.Constant)
                    and isinstance(first.value, str)
                ):
                    series |= _exposed_series(kind, first.value)
    return frozenset(series)


_PROMQL_WORDS = {"bool", "and", "or", "unless", "group_left", "group_right", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z.]+")
_NUMBER = re.compile(r"(?<![\w:$])\d+(?:\.\d*)?(?:[eE][+-]?\d+)?")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (a lexical approximation, enough for our rules).

    Removes string literals, label matchers, range selectors, grouping label lists, offsets and
    numbers; what is left is function and aggregation names (followed by a parenthesis),
    operators and keywords, and the metric names.
    """
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if text[match.end() :].lstrip().startswith("(") or word.lower() in _PROMQL_WORDS:
            continue
        names.add(word)
    return names


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up == 0", {"up"}),
        ('up{job=~"catalog|attribution"} == 0', {"up"}),
        (
            'sum by (job) (rate(http_requests_total{status=~"5.."}[5m]))'
            " / sum by (job) (rate(http_requests_total[5m])) > 0.05",
            {"http_requests_total"},
        ),
        (
            "histogram_quantile(0.99, sum by (job, route, le)"
            " (rate(http_request_duration_seconds_bucket[$__rate_interval]))) > 1",
            {"http_request_duration_seconds_bucket"},
        ),
        ("sum(rate(a_total[5m])) without (instance) / on (job) group_left b", {"a_total", "b"}),
        ("max_over_time(x:y_ratio[1h:5m] offset 1d) > 1e3", {"x:y_ratio"}),
    ],
)
def test_promql_metric_names(expr: str, expected: set[str]) -> None:
    assert promql_metric_names(expr) == expected


def test_code_defines_the_contract_metrics() -> None:
    """Guards the extractor: if it found nothing, every 'known metric' check would be vacuous."""
    missing = DOCUMENTED_SERIES - code_metric_series()
    assert not missing, f"documented metrics not found in the code: {sorted(missing)}"


def assert_known_metrics(expr: str, where: str) -> None:
    names = promql_metric_names(expr)
    assert names, f"{where}: no metric name found in {expr!r}"
    unknown = names - code_metric_series() - PROMETHEUS_SERIES
    assert not unknown, f"{where}: {expr!r} uses metrics the code does not define: {unknown}"


# ---------------------------------------------------------------------------------------------
# docker-compose.yml
# ---------------------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]  # type: ignore[no-any-return]


def environment(definition: dict[str, Any]) -> dict[str, str]:
    env = definition.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def command(definition: dict[str, Any]) -> list[str]:
    value = definition.get("command", [])
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def depends_on(definition: dict[str, Any]) -> dict[str, str]:
    """Dependency -> condition (the short list form means service_started)."""
    deps = definition.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def bind_mounts(definition: dict[str, Any]) -> dict[str, str]:
    """Container path -> repository-relative host path, for the ./… bind mounts."""
    mounts: dict[str, str] = {}
    for volume in definition.get("volumes", []):
        if isinstance(volume, dict):
            source, target = volume.get("source", ""), volume["target"]
        else:
            source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = source[2:]
    return mounts


def test_compose_has_every_service() -> None:
    missing = REQUIRED_COMPOSE_SERVICES - set(compose()["services"])
    assert not missing, f"docker-compose.yml lacks services {sorted(missing)}"


def test_compose_postgres_has_both_databases_and_a_healthcheck() -> None:
    postgres = service("postgres")
    assert str(postgres["image"]).startswith("postgres:15")
    test = postgres["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))
    init_scripts = [
        ROOT / host
        for target, host in bind_mounts(postgres).items()
        if target.startswith("/docker-entrypoint-initdb.d")
    ]
    assert init_scripts, "no init script mounted into /docker-entrypoint-initdb.d"
    sql = "\n".join(
        path.read_text()
        for script in init_scripts
        for path in (script.rglob("*") if script.is_dir() else [script])
    )
    for database in SERVICE_PORTS:
        assert re.search(rf"CREATE\s+DATABASE\s+\"?{database}\"?\s*[;\s]", sql, re.IGNORECASE), (
            f"the PostgreSQL init script does not create the {database} database"
        )


def test_compose_bind_mounts_exist() -> None:
    for name, definition in compose()["services"].items():
        for target, host in bind_mounts(definition).items():
            assert (ROOT / host).exists(), f"{name}: mount {host} -> {target} does not exist"


@pytest.mark.parametrize("name", sorted(SERVICE_PORTS))
def test_compose_migration_job(name: str) -> None:
    job = service(f"migrate-{name}")
    assert command(job) == ["clipfunnel", "migrate", name]
    assert depends_on(job).get("postgres") == "service_healthy"
    assert str(job.get("restart", "no")) == "no", "a one-shot job must not be restarted"
    # The job runs the service's own image, so the migrations applied are the code's.
    app = service(name)
    assert job.get("image") == app.get("image")
    assert job.get("build") == app.get("build")
    # `clipfunnel migrate` builds the same settings as the service: production needs the secret.
    assert environment(job) == environment(app)


@pytest.mark.parametrize(("name", "port"), sorted(SERVICE_PORTS.items()))
def test_compose_service(name: str, port: int) -> None:
    app = service(name)
    deps = depends_on(app)
    assert deps.get(f"migrate-{name}") == "service_completed_successfully"
    assert deps.get("postgres", "service_healthy") == "service_healthy"
    assert f"{port}:{port}" in [str(p) for p in app.get("ports", [])]
    build = app["build"]
    assert build["context"] == "."
    assert build["dockerfile"] == "Dockerfile"
    assert build["args"] == {"SERVICE": name, "PORT": str(port)}
    assert not command(app), "the service runs the image's CMD"

    env = environment(app)
    assert env["CLIPFUNNEL_ENV"] == "production"
    assert env["CLIPFUNNEL_SECRET"].startswith("${CLIPFUNNEL_SECRET:?"), (
        "CLIPFUNNEL_SECRET must be required (${CLIPFUNNEL_SECRET:?message}), never defaulted"
    )
    for database in SERVICE_PORTS:
        url = env[f"{database.upper()}_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://"), url
        assert re.search(rf"@postgres(:5432)?/{database}$", url), url
    assert env["ATTRIBUTION_CATALOG_URL"] == "http://catalog:8001"
    assert "ATTRIBUTION_PUBLIC_URL" in env


def test_compose_prometheus_and_grafana() -> None:
    prometheus = service("prometheus")
    assert str(prometheus["image"]).startswith("prom/prometheus")
    assert "9090:9090" in [str(p) for p in prometheus.get("ports", [])]
    config_flag = next(arg for arg in command(prometheus) if arg.startswith("--config.file="))
    config_path = PurePosixPath(config_flag.split("=", 1)[1])
    mounts = bind_mounts(prometheus)
    # deploy/prometheus is mounted as a directory, so alerts.yml sits beside prometheus.yml.
    assert mounts.get(str(config_path.parent)) == "deploy/prometheus"
    assert (ROOT / "deploy/prometheus" / config_path.name) == PROMETHEUS_CONFIG

    grafana = service("grafana")
    assert str(grafana["image"]).startswith("grafana/")
    assert "3000:3000" in [str(p) for p in grafana.get("ports", [])]
    mounts = bind_mounts(grafana)
    assert mounts.get("/etc/grafana/provisioning") == "deploy/grafana/provisioning"
    dashboard_targets = [
        t for t, host in mounts.items() if host == "deploy/grafana/" + DASHBOARD.name
    ]
    assert dashboard_targets, "the dashboard JSON is not mounted into grafana"
    provider_paths = {
        provider["options"]["path"].rstrip("/")
        for path in sorted((GRAFANA_PROVISIONING / "dashboards").glob("*.y*ml"))
        for provider in load_yaml(path)["providers"]
    }
    assert str(PurePosixPath(dashboard_targets[0]).parent) in provider_paths, (
        "the dashboard provider does not load the directory where the JSON is mounted"
    )


# ---------------------------------------------------------------------------------------------
# Dockerfiles and .dockerignore
# ---------------------------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def expand(text: str, values: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced by their values (unknown ones left as they are)."""
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def test_one_dockerfile_for_both_services() -> None:
    assert DOCKERFILE.is_file()
    assert not sorted(ROOT.glob("services/*/Dockerfile")), "the services share the root one"
    instructions = dockerfile_instructions(DOCKERFILE)
    final = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    # The build stage knows no service, so building the second image reuses its layers.
    before = " ".join(rest for _, rest in instructions[:final])
    assert not re.search(r"\$\{?(SERVICE|PORT)\b", before)
    declared = {rest.split("=")[0] for keyword, rest in instructions[final:] if keyword == "ARG"}
    assert {"SERVICE", "PORT"} <= declared
    # A build without the arguments, or with a mismatched pair, fails instead of guessing.
    checks = [rest for keyword, rest in instructions[final:] if keyword == "RUN" and "case" in rest]
    assert checks, "no RUN step checks the SERVICE and PORT build arguments"
    accepted = re.search(r"in\s+(\S+)\)", checks[0])
    assert accepted is not None
    assert set(accepted.group(1).split("|")) == {f"{n}:{p}" for n, p in SERVICE_PORTS.items()}
    assert "exit 1" in checks[0]


@pytest.mark.parametrize(("name", "port"), sorted(SERVICE_PORTS.items()))
def test_dockerfile(name: str, port: int) -> None:
    instructions = dockerfile_instructions(DOCKERFILE)
    args = {
        key: value
        for keyword, rest in instructions
        if keyword == "ARG" and "=" in rest
        for key, value in [rest.split("=", 1)]
    }
    args.update(SERVICE=name, PORT=str(port))  # what docker-compose.yml passes
    stages = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert stages, "no FROM"
    for index in stages:
        image = expand(instructions[index][1].split()[0], args)
        assert image == "python:3.11-slim" or image in {
            instructions[i][1].split()[-1] for i in stages
        }, f"unexpected base image {image}"
    final = instructions[stages[-1] :]
    env = {
        key: expand(value, args)
        for keyword, rest in final
        if keyword == "ENV"
        for key, value in (item.split("=", 1) for item in shlex.split(rest))
    }
    assert env["CLIPFUNNEL_ENV"] == "production"

    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}

    cmd = [json.loads(rest) for keyword, rest in final if keyword == "CMD"][-1]
    if cmd[:2] == ["sh", "-c"]:
        script = shlex.split(expand(cmd[2], env))
        assert script[0] == "exec", "the server must replace the shell (PID 1 gets signals)"
        cmd = script[1:]
    assert cmd == ["clipfunnel", "serve", name, "--host", "0.0.0.0", "--port", str(port)]

    healthchecks = [rest for keyword, rest in final if keyword == "HEALTHCHECK"]
    assert healthchecks, "no HEALTHCHECK"
    check = healthchecks[-1]
    assert "urllib" in check
    assert "/healthz" in check
    # The check reads the port from the image's environment, set from the build argument.
    assert "http://127.0.0.1:%s/healthz' % os.environ['CLIPFUNNEL_PORT']" in check
    assert env["CLIPFUNNEL_PORT"] == str(port)
    assert str(port) in [expand(rest, args) for keyword, rest in final if keyword == "EXPOSE"]

    # Cache-friendly order: dependencies install from pyproject.toml before the code is copied.
    copies = [(i, rest) for i, (keyword, rest) in enumerate(instructions) if keyword == "COPY"]
    first_pyproject = min(i for i, rest in copies if "pyproject.toml" in rest)
    first_code = min(i for i, rest in copies if re.search(r"\b(services|shared)\b", rest))
    installs = [
        i
        for i, (keyword, rest) in enumerate(instructions)
        if keyword == "RUN" and "pip install" in rest
    ]
    assert any(first_pyproject < i < first_code for i in installs), (
        "install the dependencies between copying pyproject.toml and copying the code"
    )
    for _, rest in copies:
        parts = [p for p in rest.split() if not p.startswith("--")]
        if "--from=" in rest:
            continue
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY source {source} does not exist"
            assert not dockerignored(source), f"COPY source {source} is excluded by .dockerignore"


def dockerignored(path: str) -> bool:
    """Docker's .dockerignore rule, simplified: the last pattern matching the path or a parent
    directory of it decides; `!` re-includes."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        variants = {pattern, pattern[3:]} if pattern.startswith("**/") else {pattern}
        if any(fnmatch.fnmatchcase(p, v) for p in prefixes for v in variants):
            ignored = not negate
    return ignored


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("pyproject.toml", False),
        ("README.md", False),  # pyproject's readme: the build reads it
        ("shared/settings.py", False),
        ("services/catalog/app.py", False),
        ("services/catalog/migrations/versions/0001_catalog_catalog_schema.py", False),
        ("services/attribution/migrations/script.py.mako", False),
        (".venv/bin/python", True),
        ("var/secret", True),
        (".git/config", True),
        ("services/catalog/__pycache__/app.cpython-311.pyc", True),
        ("tests/conftest.py", True),
    ],
)
def test_dockerignore(path: str, ignored: bool) -> None:
    assert dockerignored(path) is ignored


# ---------------------------------------------------------------------------------------------
# Prometheus
# ---------------------------------------------------------------------------------------------


def test_prometheus_scrapes_both_services() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    global_interval = config.get("global", {}).get("scrape_interval")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name, port in SERVICE_PORTS.items():
        assert name in jobs, f"no scrape job {name}"
        job = jobs[name]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert job.get("scrape_interval", global_interval) == "15s"
        targets = [t for static in job["static_configs"] for t in static["targets"]]
        assert targets == [f"{name}:{port}"]


def test_prometheus_loads_the_alert_rules() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    assert config["rule_files"] == ["alerts.yml"]
    assert (PROMETHEUS_CONFIG.parent / "alerts.yml").is_file()


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    assert rules
    names = [rule.get("alert") for rule in rules]
    assert all(names), "every rule in alerts.yml is an alert"
    assert len(set(names)) == len(names), "alert names are unique"
    for rule in rules:
        where = f"alert {rule['alert']}"
        assert str(rule.get("expr", "")).strip(), f"{where}: no expr"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{where}: severity"
        assert str(rule.get("annotations", {}).get("summary", "")).strip(), f"{where}: summary"
        assert str(rule.get("annotations", {}).get("description", "")).strip(), where
        assert_known_metrics(str(rule["expr"]), where)


def test_alert_rules_cover_the_operational_signals() -> None:
    exprs = [(rule, " ".join(str(rule["expr"]).split())) for rule in alert_rules()]

    def find(pattern: str) -> dict[str, Any]:
        matches = [rule for rule, expr in exprs if re.search(pattern, expr)]
        assert matches, f"no alert whose expr matches {pattern!r}"
        return matches[0]

    find(r'http_requests_total\{status=~"5\.\."\}.*/.*http_requests_total\[')
    find(r"histogram_quantile\(0\.99,.*http_request_duration_seconds_bucket.*> 1\b")
    assert find(r"clipfunnel_catalog_sync_lag_seconds > 300")["for"] == "5m"
    rejected = find(
        r'clipfunnel_events_received_total\{outcome="rejected"\}.*/.*'
        r"clipfunnel_events_received_total\[.*> 0\.05"
    )
    assert rejected["for"] == "10m"
    find(r"\bup\b.*== 0")


# ---------------------------------------------------------------------------------------------
# Grafana
# ---------------------------------------------------------------------------------------------


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return panels


def test_dashboard_is_a_prometheus_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"]
    variables = [
        v
        for v in dashboard["templating"]["list"]
        if v["type"] == "datasource" and v["query"] == "prometheus"
    ]
    assert variables, "no Prometheus data source variable"
    reference = "${" + variables[0]["name"] + "}"
    panels = dashboard_panels()
    ids = [panel["id"] for panel in panels]
    assert len(set(ids)) == len(ids), "panel ids are unique"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == reference, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]


def test_dashboard_queries_use_defined_metrics() -> None:
    used: set[str] = set()
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            assert_known_metrics(target["expr"], f"panel {panel['title']!r}")
            used |= promql_metric_names(target["expr"])
    wanted = DOCUMENTED_SERIES - {"clipfunnel_catalog_changes_total"}
    assert wanted <= used, f"no panel shows {sorted(wanted - used)}"


def test_grafana_provisioning() -> None:
    sources = [
        source
        for path in sorted((GRAFANA_PROVISIONING / "datasources").glob("*.y*ml"))
        for source in load_yaml(path)["datasources"]
    ]
    prometheus = [source for source in sources if source["type"] == "prometheus"]
    assert len(prometheus) == 1
    assert prometheus[0]["url"] == "http://prometheus:9090"  # the compose service
    providers = [
        provider
        for path in sorted((GRAFANA_PROVISIONING / "dashboards").glob("*.y*ml"))
        for provider in load_yaml(path)["providers"]
    ]
    assert providers
    assert all(provider["type"] == "file" for provider in providers)


# ---------------------------------------------------------------------------------------------
# promtool (when installed)
# ---------------------------------------------------------------------------------------------

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not on PATH (Debian package `prometheus`)"
)


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@needs_promtool
@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "deploy/prometheus/prometheus.yml"),
        ("check", "rules", "deploy/prometheus/alerts.yml"),
        ("test", "rules", "deploy/prometheus/alerts.test.yml"),
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool(args: tuple[str, ...]) -> None:
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_parses_dashboard_queries(tmp_path: Path) -> None:
    """Each panel query, as a recording rule (Grafana's $__rate_interval set to 1m)."""
    rules = [
        {
            "record": f"dashboard:panel_{panel['id']}_{target['refId']}",
            "expr": target["expr"].replace("$__rate_interval", "1m"),
        }
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
