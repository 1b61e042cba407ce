"""Notification templates: sandboxed, checked at config load, falling back at send time."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from alert_channels.slack import SlackSettings, slack_payload
from alert_channels.templates import (
    alert_context,
    compile_template,
    notification_context,
    render,
)
from engine.config import ConfigError, parse_config
from engine.model.alert import Alert, AlertStatus, Severity
from engine.model.notification import Notification


def alert(status: AlertStatus = AlertStatus.FIRING, **changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "fingerprint": "438fe56f6f6f643b",
        "status": status,
        "severity": Severity.CRITICAL,
        "series": "latency_ms",
        "labels": {"service": "api", "team": "web"},
        "detector": "zscore",
        "value": 950.0,
        "expected": 120.0,
        "score": 8.5,
        "started_at": 1700000000.0,
        "ended_at": None if status is AlertStatus.FIRING else 1700000600.0,
        "summary": "latency is up",
        "annotations": {"runbook_url": "https://runbooks.example/api", "note": "n"},
    }
    return Alert(**{**fields, **changes})


def notification(*alerts: Alert) -> Notification:
    return Notification(
        receiver="slack",
        group_key='root:{service="api"}',
        alerts=tuple(alerts),
        group_labels={"service": "api"},
        external_url="https://kestrel.example",
    )


def test_alert_context_speaks_alertmanager() -> None:
    ctx = alert_context(alert())
    assert ctx["labels"] == {
        "alertname": "latency_ms",
        "detector": "zscore",
        "service": "api",
        "severity": "critical",
        "team": "web",
    }
    assert ctx["starts_at"] == "2023-11-14T22:13:20Z" and ctx["ends_at"] == ""
    assert ctx["annotations"]["runbook_url"] == "https://runbooks.example/api"


def test_notification_context_has_groups_and_common_items() -> None:
    other = alert(labels={"service": "api", "team": "db"}, fingerprint="ffff000011112222")
    ctx = notification_context(notification(alert(), other, alert(AlertStatus.RESOLVED)))
    assert ctx["status"] == "firing"
    assert (len(ctx["alerts"]), len(ctx["firing"]), len(ctx["resolved"])) == (3, 2, 1)
    assert ctx["common_labels"]["service"] == "api" and "team" not in ctx["common_labels"]
    assert ctx["group_labels"] == {"service": "api"}
    assert ctx["receiver"] == "slack" and ctx["external_url"] == "https://kestrel.example"


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ labels.__class__.__init__.__globals__ }}",
        "{{ value.__class__.__base__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ self._TemplateReference__context }}",
    ],
)
def test_the_sandbox_keeps_python_internals_out(attack: str) -> None:
    out = render(compile_template(attack), alert_context(alert()), "FALLBACK")
    print(repr(attack), "->", repr(out))
    assert "class" not in out and "uid=" not in out and "function" not in out
    assert "subprocess" not in out and "module" not in out


def test_a_failing_template_falls_back_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        out = render(compile_template("{{ 1 // 0 }}"), alert_context(alert()), "FALLBACK")
    assert out == "FALLBACK"
    assert "ZeroDivisionError" in caplog.text


def test_slack_templates_replace_text_and_header() -> None:
    settings = SlackSettings(
        name="slack",
        url="https://hooks.slack.com/services/T0/B0/XXXX",
        template=(
            "{% for a in firing %}:fire: *{{ a.labels.alertname }}* on {{ a.labels.service }} "
            "({{ a.labels.team }}): {{ a.value|number }} vs {{ a.expected|number }}"
            " <{{ a.annotations.runbook_url }}|runbook>\n{% endfor %}"
        ),
        title_template="[{{ status|upper }}] {{ common_labels.service }}: {{ alerts|length }}",
    )
    assert settings.template is not None and settings.title_template is not None
    body = slack_payload(
        notification(alert(), alert(AlertStatus.RESOLVED)),
        template=compile_template(settings.template),
        title_template=compile_template(settings.title_template),
    )
    print(body)
    header, section = body["blocks"][0], body["blocks"][1]
    assert header["text"]["text"] == "[FIRING] api: 2"
    expected = ":fire: *latency_ms* on api (web): 950 vs 120 <https://runbooks.example/api|runbook>"
    assert section["text"]["text"] == expected
    assert body["text"] == expected
    assert body["blocks"][-1]["elements"][0]["text"] == "<https://kestrel.example|Open in Kestrel>"


def test_slack_without_templates_shows_link_annotations() -> None:
    body = slack_payload(notification(alert()))
    text = body["blocks"][1]["text"]["text"]
    print(text)
    assert text.splitlines()[-1] == "<https://runbooks.example/api|runbook_url>"


def test_a_template_that_renders_empty_keeps_the_built_in_text() -> None:
    body = slack_payload(notification(alert()), template=compile_template("{{ missing }}"))
    assert body["blocks"][1]["text"]["text"].startswith("*FIRING*")


def test_template_syntax_errors_are_config_errors_with_key_paths() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "alerts": {"summary_template": "{{ series_id }"},
                "channels": [
                    {
                        "name": "s",
                        "type": "slack",
                        "url": "https://hooks.slack.com/services/T0/B0/X",
                        "template": "ok {{ value }}",
                        "title_template": "{% if status %}no end",
                    }
                ],
            },
            "cfg.toml",
            {},
        )
    print("\n".join(info.value.problems))
    assert info.value.problems == [
        "alerts.summary_template: template syntax error at line 1: unexpected '}'",
        "channels[0].title_template: template syntax error at line 1: Unexpected end of "
        "template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. "
        "The innermost block that needs to be closed is 'if'.",
    ]
