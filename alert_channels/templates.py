"""Notification templates: users' Jinja text for an alert's summary and a Slack message.

Templates come from the config file, so they run in Jinja's :class:`SandboxedEnvironment`: no
attribute starting with ``_``, no unsafe methods, no file or module access. They are compiled
when the config is loaded (:func:`check_template`), so a syntax error is a config error naming
the key and line. At send time a template that fails (e.g. dividing by zero) does not lose the
notification: the built-in text is used instead (:func:`render`).

What a template sees, in Alertmanager's spirit with Python names:

- an alert (``[alerts] summary_template``, and each item of ``alerts`` below): ``status``,
  ``severity``, ``series``, ``series_id``, ``labels`` (Alertmanager's: ``alertname``,
  ``detector``, ``severity`` and the series and override labels), ``annotations``,
  ``detector``, ``value``, ``expected``, ``score``, ``summary``, ``starts_at``, ``ends_at``
  (RFC 3339 text, ``ends_at`` empty while firing), ``fingerprint``;
- a notification (Slack ``template`` / ``title_template``): ``status`` (``firing`` while any
  alert fires), ``alerts``, ``firing``, ``resolved`` (lists of alerts as above),
  ``group_labels``, ``common_labels``, ``common_annotations``, ``receiver``, ``external_url``.

Filters besides Jinja's own: ``number`` (``950``, ``8.5``, ``NaN``) and ``time`` (epoch
seconds to RFC 3339).

>>> from engine.model.alert import Alert, AlertStatus, Severity
>>> alert = Alert("438fe56f6f6f643b", AlertStatus.FIRING, Severity.WARNING, "latency_ms",
...               {"service": "api", "team": "web"}, "zscore", 950.0, 120.0, 8.5,
...               1700000000.0, None, "slow", annotations={"runbook_url": "https://rb/api"})
>>> t = compile_template("{{ labels.team }}: {{ series_id }} at {{ value|number }} "
...                      "(runbook {{ annotations.runbook_url }})")
>>> render(t, alert_context(alert), "fallback")
'web: latency_ms{service=api,team=web} at 950 (runbook https://rb/api)'
>>> render(compile_template("[{{ value.__class__ }}]"), alert_context(alert), "fallback")
'[]'
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from pydantic import AfterValidator

from alert_channels.formatting import alert_annotations, common_items, format_number
from engine.model.alert import Alert, AlertStatus, alert_labels
from engine.model.notification import Notification
from engine.model.times import rfc3339

__all__ = [
    "TemplateText",
    "alert_context",
    "check_template",
    "compile_template",
    "notification_context",
    "render",
]

log = logging.getLogger(__name__)

#: Longest template source accepted (characters): templates are config, not programs.
MAX_TEMPLATE_CHARS = 10_000


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False
    )
    env.filters["number"] = format_number
    env.filters["time"] = rfc3339
    return env


_ENV = _environment()


def compile_template(source: str) -> jinja2.Template:
    """The sandboxed template of ``source``.

    Raises
    ------
    ValueError
        On a syntax error (``template syntax error at line N: ...``) or a source longer than
        :data:`MAX_TEMPLATE_CHARS`.

    >>> compile_template("{{ series }")
    Traceback (most recent call last):
    ...
    ValueError: template syntax error at line 1: unexpected '}'
    """
    if len(source) > MAX_TEMPLATE_CHARS:
        raise ValueError(f"template longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"template syntax error at line {exc.lineno}: {exc.message}") from None


def check_template(source: str) -> str:
    """A pydantic validator: ``source`` if it compiles (see :func:`compile_template`)."""
    compile_template(source)
    return source


#: A config string that must be a valid template; reported at its key path when not.
TemplateText = Annotated[str, AfterValidator(check_template)]


def alert_context(alert: Alert) -> dict[str, Any]:
    """What a template sees of one alert (see the module docstring)."""
    return {
        "status": alert.status.value,
        "severity": alert.severity.value,
        "series": alert.series,
        "series_id": alert.series_id,
        "labels": alert_labels(alert),
        "annotations": dict(alert.annotations),
        "detector": alert.detector,
        "value": alert.value,
        "expected": alert.expected,
        "score": alert.score,
        "summary": alert.summary,
        "starts_at": rfc3339(alert.started_at),
        "ends_at": "" if alert.ended_at is None else rfc3339(alert.ended_at),
        "fingerprint": alert.fingerprint,
        "repeat": alert.repeat,
    }


def notification_context(notification: Notification) -> dict[str, Any]:
    """What a template sees of one notification (see the module docstring)."""
    alerts = [alert_context(a) for a in notification.alerts]
    firing = [a for a in alerts if a["status"] == AlertStatus.FIRING.value]
    resolved = [a for a in alerts if a["status"] != AlertStatus.FIRING.value]
    return {
        "status": "firing" if firing else "resolved",
        "alerts": alerts,
        "firing": firing,
        "resolved": resolved,
        "group_labels": dict(notification.group_labels),
        "common_labels": common_items([a["labels"] for a in alerts]),
        "common_annotations": common_items([alert_annotations(a) for a in notification.alerts]),
        "receiver": notification.receiver,
        "external_url": notification.external_url or "",
    }


def render(template: jinja2.Template, context: Mapping[str, Any], fallback: str) -> str:
    """``template`` rendered with ``context``, stripped; ``fallback`` if rendering fails.

    A failure (an exception in the template, a sandbox violation) is logged once per call
    with the template's error, never with the context's values.
    """
    try:
        return template.render(context).strip()
    except Exception as exc:  # any template error: keep the notification
        log.warning(
            "notification template failed (%s: %s); built-in text used", type(exc).__name__, exc
        )
        return fallback
