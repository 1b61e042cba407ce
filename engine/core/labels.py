"""What an alert transition gets from the config besides its series: labels, annotations, summary.

``[[overrides]]`` may add ``labels`` (e.g. ``team``) and ``annotations`` (e.g. ``runbook_url``,
``dashboard``) to the alerts of the series they match, and ``[alerts] summary_template`` may
write the summary line. An :class:`AlertDecorator` applies them to each alert transition as it
is recorded (not to each event): routes then match the labels, and notifications show the
annotations and summary.

Later matching overrides win over earlier ones (as for detector settings); a series' own label
wins over an override label of the same name (it is part of the series' identity), and an
annotation the alert already has (e.g. a log pattern's ``template``) wins over an override's.
The alert's fingerprint is not changed: it identifies the series and detector.

>>> from engine.config import parse_config
>>> from engine.model.alert import Alert, AlertStatus, Severity
>>> cfg = parse_config({
...     "overrides": [{"match": "latency_ms", "labels": {"team": "web"},
...                    "annotations": {"runbook_url": "https://rb/latency"}}],
...     "alerts": {"summary_template": "{{ labels.team }}: {{ series_id }} is {{ value|number }}"},
... }, "cfg.toml", {})
>>> alert = Alert("438fe56f6f6f643b", AlertStatus.FIRING, Severity.WARNING, "latency_ms",
...               {"service": "api"}, "zscore", 950.0, 120.0, 8.5, 1700000000.0, None, "slow")
>>> decorated = AlertDecorator.for_config(cfg)(alert)
>>> dict(decorated.labels), dict(decorated.annotations)
({'team': 'web', 'service': 'api'}, {'runbook_url': 'https://rb/latency'})
>>> decorated.summary
'web: latency_ms{service=api,team=web} is 950'
"""

from __future__ import annotations

from collections.abc import Sequence

import jinja2
from msgspec.structs import replace

from alert_channels.templates import alert_context, compile_template, render
from engine.config import Config, Override
from engine.model.alert import Alert, series_id

__all__ = ["AlertDecorator"]


class AlertDecorator:
    """Adds the config's labels, annotations and summary to alert transitions (see the module).

    Parameters
    ----------
    overrides
        The ``[[overrides]]``; only those with labels or annotations are kept.
    summary_template
        ``[alerts] summary_template`` (a validated template source), or ``None``.
    """

    __slots__ = ("_overrides", "_summary")

    def __init__(self, overrides: Sequence[Override], summary_template: str | None) -> None:
        self._overrides = tuple(ov for ov in overrides if ov.labels or ov.annotations)
        self._summary: jinja2.Template | None = (
            None if summary_template is None else compile_template(summary_template)
        )

    @classmethod
    def for_config(cls, cfg: Config) -> AlertDecorator:
        """The decorator of ``cfg``."""
        return cls(cfg.overrides, cfg.alerts.summary_template)

    @property
    def active(self) -> bool:
        """Whether it changes anything (else callers may skip it)."""
        return bool(self._overrides) or self._summary is not None

    def __call__(self, alert: Alert) -> Alert:
        """``alert`` with the matching overrides' labels and annotations and the summary."""
        if not self.active:
            return alert
        labels: dict[str, str] = {}
        annotations: dict[str, str] = {}
        sid = series_id(alert.series, alert.labels)
        for ov in self._overrides:
            if ov.matches(alert.series, sid):
                labels.update(ov.labels)
                annotations.update(ov.annotations)
        if labels or annotations:
            alert = replace(
                alert,
                labels={**labels, **alert.labels},
                annotations={**annotations, **alert.annotations},
            )
        if self._summary is not None:
            alert = replace(
                alert, summary=render(self._summary, alert_context(alert), alert.summary)
            )
        return alert
