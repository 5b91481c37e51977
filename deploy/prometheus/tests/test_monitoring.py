"""The alert rules and the dashboard parse, every expression in them names only metrics that
the services export (or Prometheus's own `up`), and every metric of the runtime is on the
dashboard."""

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "nordflow.json"
# Series Prometheus makes itself for every scrape target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def exported() -> set[str]:
    """Every series name the services can expose: the runtime's metrics, the mapper's own,
    and prometheus_client's default process and Python collectors."""
    import mapper.service  # noqa: F401 - registers nordflow_mapper_payments_total
    import nordflow_runtime.metrics  # noqa: F401 - registers the shared metrics

    names = set(PROMETHEUS_OWN)
    for family in REGISTRY.collect():
        names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, keywords, labels left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers (and Grafana's ${...})
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text
    )  # grouping labels
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group()
        after = text[match.end() :].lstrip()
        if after.startswith("(") or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def alert_rules() -> list[dict]:
    loaded = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", ()):
            out.append((panel["title"], target["expr"]))
    return out


def test_the_metric_name_parser_sees_through_promql():
    expr = (
        'sum by (service) (increase(nordflow_jobs_total{outcome="failed"}[15m])) > 0 '
        "unless histogram_quantile(0.99, sum by (le) (rate(b_bucket[5m]))) and up == 0"
    )
    assert metric_names(expr) == {"nordflow_jobs_total", "b_bucket", "up"}


def test_alert_rules_parse_and_each_is_complete():
    rules = alert_rules()
    assert len(rules) >= 8
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("page", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        runbook = ROOT / rule["annotations"]["runbook_url"]
        assert runbook.is_file(), f"{rule['alert']}: no {runbook}"
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_reads_only_exported_metrics(rule):
    used = metric_names(rule["expr"])
    assert used, f"{rule['alert']} reads no metric"
    assert used <= exported(), f"{rule['alert']} reads unknown metrics {used - exported()}"


def test_the_dashboard_reads_only_exported_metrics():
    known = exported()
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    for title, expr in exprs:
        used = metric_names(expr)
        assert used, f"panel {title!r} reads no metric"
        assert used <= known, f"panel {title!r} reads unknown metrics {used - known}"


def test_the_dashboard_is_grafana_json_with_unique_panel_ids():
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert board["uid"] == "nordflow-services"
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "service"}


def runtime_metrics() -> set[str]:
    """The names of the metric families nordflow_runtime.metrics defines."""
    from nordflow_runtime import metrics
    from prometheus_client.metrics import MetricWrapperBase

    families = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            [family] = value.describe()
            families.add(family.name + ("_total" if family.type == "counter" else ""))
    return families


def test_every_runtime_metric_is_on_the_dashboard():
    read = set().union(*(metric_names(expr) for _, expr in dashboard_exprs()))
    # A histogram is read through its series (`_bucket`, `_count`).
    read |= {name.removesuffix(suffix) for name in read for suffix in ("_bucket", "_count")}
    missing = runtime_metrics() - read
    assert not missing, f"on no panel of deploy/grafana/nordflow.json: {sorted(missing)}"


@pytest.mark.parametrize(
    "metric",
    [
        "nordflow_consumer_lag",
        "nordflow_consumer_last_commit_timestamp_seconds",
        "nordflow_jobs_oldest_due_seconds",
        "nordflow_outbox_publish_failures_total",
        "nordflow_dead_letters_total",
        "nordflow_stuck",
    ],
)
def test_an_alert_watches_each_sign_of_a_service_that_moves_nothing(metric):
    """What the fault harness found invisible (docs/resilience.md, *Metrics missing*)."""
    assert metric in runtime_metrics()
    assert any(metric in metric_names(rule["expr"]) for rule in alert_rules()), metric
