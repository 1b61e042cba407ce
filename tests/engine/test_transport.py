"""The transport's own settings, read from a built worker (no broker: nothing connects)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from engine.config import parse_config
from engine.runtime.app import build_worker


def _producer_settings(kafka: dict[str, object]) -> dict[str, object]:
    cfg = parse_config({"kafka": kafka, "redis": {"enabled": False}}, "t.toml", {})
    worker = build_worker(cfg, registry=CollectorRegistry(), routes=[], mirror=None)
    producer = worker.app.producer
    return {**producer._settings_default(), **producer._settings_extra()}


def test_the_producer_is_idempotent_only_when_asked() -> None:
    on = _producer_settings({"idempotent_producer": True})
    assert (on["acks"], on["enable_idempotence"]) == ("all", True)
    off = _producer_settings({})
    assert off["acks"] == 1 and "enable_idempotence" not in off


def test_offsets_are_committed_as_often_as_the_config_says() -> None:
    def interval(worker: dict[str, object]) -> float:
        cfg = parse_config({"worker": worker, "redis": {"enabled": False}}, "t.toml", {})
        built = build_worker(cfg, registry=CollectorRegistry(), routes=[], mirror=None)
        return float(built.app.conf.broker_commit_interval)

    assert interval({}) == 2.8  # Faust's default, which the README's crash semantics quote
    assert interval({"commit_interval_seconds": 30}) == 30.0
    assert interval({"commit_interval_seconds": "1m"}) == 60.0  # a duration, like the others
