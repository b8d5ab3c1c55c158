"""deploy/'s monitoring: the alert rules and their unit tests (promtool), the Prometheus
config, the Grafana dashboard (one row per primitive, every expression valid PromQL over
metrics bus/metrics.py declares), the compose wiring; and the metric helpers."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bus import metrics
from bus.agents.models import Liveness

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "agentbus.json"
PRIMITIVES = [
    "Workers",
    "Topics",
    "Subscriptions",
    "Agents",
    "Tool calls",
    "Approvals",
    "Streams",
    "Keys and quotas",
]
METRIC_NAME = re.compile(r"\b(agentbus_[a-z0-9_]+|up)\b(?!\s*\()")


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd, check=False)


def dashboard() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return found


def dashboard_expressions() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] if p["type"] != "row" for t in p["targets"]]


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [r["expr"] for group in rules["groups"] for r in group["rules"]]


def exposed_names(text: str) -> set[str]:
    """Every series name an exposition offers, also for families that have no sample yet."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + s for s in suffixes.get(family.type, [""]))
        names.update(sample.name for sample in family.samples)
    return names


def queried_names(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in METRIC_NAME.findall(expr)} - {"up"}


# -- alert rules ---------------------------------------------------------------------------


def test_the_alert_rules_pass_promtool_check() -> None:
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout


def test_the_alert_rules_unit_tests_pass() -> None:
    tested = promtool("test", "rules", "alerts.test.yml", cwd=ALERTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_the_issue_asks_for_is_there() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    names = {r["alert"] for group in rules["groups"] for r in group["rules"]}
    assert names >= {
        "AgentbusSubscriptionLagGrowing",
        "AgentbusDeadLettersArriving",
        "AgentbusAgentDead",
        "AgentbusApprovalNearExpiry",
        "AgentbusWorkerMissing",
    }
    tested = yaml.safe_load((ALERTS.parent / "alerts.test.yml").read_text())
    covered = {case["alertname"] for test in tested["tests"] for case in test["alert_rule_test"]}
    assert covered == names, "every alert has a unit test"


def test_the_prometheus_config_is_valid_and_loads_the_rules(tmp_path: Path) -> None:
    """As compose runs it, with the admin key secret at a path that exists here."""
    key = tmp_path / "admin_key"
    key.write_text("abk_admin.test\n")
    config = (ALERTS.parent / "prometheus.yml").read_text()
    assert "/run/secrets/admin_key" in config
    (tmp_path / "prometheus.yml").write_text(config.replace("/run/secrets/admin_key", str(key)))
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text())
    checked = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout


# -- the dashboard -------------------------------------------------------------------------


def test_the_dashboard_has_one_row_per_primitive_each_with_panels() -> None:
    panels = dashboard()["panels"]
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == PRIMITIVES
    per_row: dict[str, int] = {}
    current = ""
    for panel in panels:
        if panel["type"] == "row":
            current = panel["title"]
        else:
            per_row[current] = per_row.get(current, 0) + 1
    assert set(per_row) == set(PRIMITIVES) and min(per_row.values()) >= 1
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"


def test_every_panel_queries_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert {panel["datasource"]["uid"]} | {t["datasource"]["uid"] for t in panel["targets"]} == {uid}


def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule (Grafana's $__rate_interval
    stands for a range it picks)."""
    expressions = [e.replace("$__rate_interval", "5m") for e in dashboard_expressions()]
    assert not any("$" in e for e in expressions), "no other Grafana variable"
    rules = [{"record": f"agentbus:panel_{i}", "expr": e} for i, e in enumerate(expressions)]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_and_the_alerts_query_only_declared_metrics() -> None:
    """Against what bus/metrics.py declares (tests/integration/test_metrics.py checks a live
    worker's /metrics too)."""
    declared = exposed_names(generate_latest(REGISTRY).decode())
    queried = queried_names(dashboard_expressions() + alert_expressions())
    assert queried and queried <= declared, queried - declared


def test_the_dashboard_shows_every_metric_of_the_issue() -> None:
    queried = queried_names(dashboard_expressions())
    for name in (
        "agentbus_topic_records_published_total",
        "agentbus_topic_records_delivered_total",
        "agentbus_subscription_lag_records",
        "agentbus_subscription_in_flight",
        "agentbus_subscription_oldest_unacked_age_seconds",
        "agentbus_dead_letters_total",
        "agentbus_agents",
        "agentbus_approvals_pending",
        "agentbus_approval_decision_seconds_bucket",
        "agentbus_tool_call_seconds_bucket",
        "agentbus_stream_chunk_latency_seconds_bucket",
        "agentbus_forwards_total",
        "agentbus_kafka_produce_seconds_bucket",
        "agentbus_table_recovery_remaining_records",
    ):
        assert name in queried, name


# -- compose -------------------------------------------------------------------------------


def test_compose_runs_prometheus_and_grafana_provisioned_from_deploy() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            assert (DEPLOY / source).exists(), volume
    assert "admin_key" in services["prometheus"]["secrets"]
    workers = {
        f"{s['hostname']}:{s['command'][s['command'].index('--web-port') + 1]}"
        for s in services.values()
        if "hostname" in s and "command" in s and "--web-port" in s["command"]
    }
    scrape = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    [job] = scrape["scrape_configs"]
    assert job["job_name"] == "agentbus", "the alerts select job=agentbus"
    assert set(job["static_configs"][0]["targets"]) == workers
    for worker in ("worker1", "worker2"):
        assert "admin_key" in services[worker]["secrets"]
        assert services[worker]["environment"]["AGENTBUS_ADMIN_KEY_FILE"] == "/run/secrets/admin_key"


# -- the helpers in bus/metrics.py ---------------------------------------------------------


def test_liveness_states_are_the_models() -> None:
    assert set(metrics.LIVENESS_STATES) == set(get_args(Liveness))


def test_a_bounded_label_keeps_its_first_values_and_folds_the_rest() -> None:
    label = metrics.BoundedLabel(2)
    assert [label(v) for v in ("a", "b", "c", "a", "d", "b")] == [
        "a",
        "b",
        metrics.OTHER,
        "a",
        metrics.OTHER,
        "b",
    ]


@pytest.fixture
def sampled() -> Any:
    gauges = metrics.SampledGauges(["k"], ("agentbus_test_one", "one"), ("agentbus_test_two", "two"))
    yield gauges
    REGISTRY.unregister(gauges)


def scrape_test_families() -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(REGISTRY).decode()
    return {
        f.name: [(s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(text)
        if f.name.startswith("agentbus_test_")
    }


def test_sampled_gauges_read_at_scrape_time_and_skip_missing_values(sampled: Any) -> None:
    assert scrape_test_families() == {"agentbus_test_one": [], "agentbus_test_two": []}
    state = {"x": (1.0, None), "y": (2.0, 3.0)}
    sampled.read_from(lambda: [((k,), v) for k, v in state.items()])
    assert scrape_test_families() == {
        "agentbus_test_one": [({"k": "x"}, 1.0), ({"k": "y"}, 2.0)],
        "agentbus_test_two": [({"k": "y"}, 3.0)],
    }
    del state["x"]  # gone from the worker: gone from the scrape, no stale series
    assert scrape_test_families()["agentbus_test_one"] == [({"k": "y"}, 2.0)]


def test_a_failing_reader_leaves_its_families_empty(sampled: Any) -> None:
    def broken() -> list[metrics.Row]:
        raise RuntimeError("table not open yet")

    sampled.read_from(broken)
    assert scrape_test_families() == {"agentbus_test_one": [], "agentbus_test_two": []}
