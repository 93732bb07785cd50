"""Reading /metrics as Prometheus would, with prometheus-client's own parser."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ADMIN

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, headers: dict[str, str] = ADMIN) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    """The sample's value; 0 when the series does not exist (yet)."""
    return samples.get((metric, frozenset(labels.items())), 0.0)


def series(samples: Samples, metric: str) -> list[dict[str, str]]:
    return [dict(labels) for (name, labels) in samples if name == metric]
