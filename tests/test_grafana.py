"""docker/: the Grafana dashboard queries only metrics the service exports, through the
provisioned Prometheus data source, and the monitoring services are an optional profile."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

DOCKER = Path(__file__).resolve().parents[1] / "docker"
METRIC = re.compile(r"\bcescale_[a-z_]+")


def exported(client) -> set[str]:
    text = client.get("/metrics").text
    return {family.name for family in text_string_to_metric_families(text)}


def family(name: str) -> str:
    return re.sub(r"_(total|bucket|count|sum)$", "", name)


def test_every_dashboard_query_uses_exported_metrics(client):
    dashboard = json.loads((DOCKER / "grafana/dashboards/cescale.json").read_text())
    families = exported(client)
    used = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "cescale-prometheus", panel["title"]
        for target in panel["targets"]:
            names = METRIC.findall(target["expr"])
            assert names, (panel["title"], target["expr"])
            used |= {family(n) for n in names}
    assert used - families == set()
    # the dashboard covers the loop and the business metrics
    assert {"cescale_loop_tick_seconds", "cescale_cost_usd", "cescale_deadline_misses"} <= used


def test_provisioning_and_compose_profile():
    source = yaml.safe_load(
        (DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert source["uid"] == "cescale-prometheus" and source["url"] == "http://prometheus:9090"
    scrape = yaml.safe_load((DOCKER / "prometheus/prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["api:8000"]
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    assert compose["prometheus"]["profiles"] == compose["grafana"]["profiles"] == ["monitoring"]
    assert "profiles" not in compose["api"]
    mounts = " ".join(compose["grafana"]["volumes"])
    assert "grafana/dashboards" in mounts and "grafana/provisioning" in mounts
