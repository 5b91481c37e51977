"""The topic map and the services agree: each topic's declared consumers are exactly the
services whose app subscribes a handler to it, and each producer is a service."""

from __future__ import annotations

import importlib

import pytest
from cryptography.fernet import Fernet
from nordflow_schemas.topics import SERVICES, TOPICS


@pytest.fixture(autouse=True)
def settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What every service needs to be built (nothing connects when an app is built)."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://unused/nordflow")
    monkeypatch.setenv("ENCRYPTION_KEY", Fernet.generate_key().decode())


@pytest.mark.parametrize("service", SERVICES)
def test_declared_consumers_match_the_subscribed_handlers(service: str) -> None:
    package = service.replace("-", "_")
    app = importlib.import_module(f"{package}.app").create_app()
    subscribed = set(app.topics)  # events and raw records (event.dead_lettered)
    declared = {topic.name for topic in TOPICS if service in topic.consumers}
    assert subscribed == declared, (
        f"{service}: subscribes to {sorted(subscribed - declared)} not in the topic map, and "
        f"the map lists {sorted(declared - subscribed)} it does not subscribe to"
    )


def test_every_producer_and_consumer_is_known() -> None:
    readers = {*SERVICES, "dashboards", "operators"}
    for topic in TOPICS:
        assert set(topic.producers) <= set(SERVICES), topic.name
        assert set(topic.consumers) <= readers, topic.name
