"""Example trace ids on alerts: which requests to look at when a service's series misbehaves.

Log events and spans decoded from OpenTelemetry (and any log carrying a ``trace_id``) keep their
trace id in ``raw["trace_id"]``. :class:`TraceExamples` remembers the last few per service
(errors first, a bounded number of services) and, on alerts of series labelled with that
service, adds the annotation ``trace_ids`` (comma separated) and, when a link template is
configured (``[alerts] trace_link_template``, e.g. ``"https://jaeger/trace/{trace_id}"``),
``trace_url``: the link to the first. Alertmanager-style receivers (webhook, Alertmanager) show
annotations; Slack shows the link.

The memory is per worker and not saved: after a restart, the first alerts of a service carry
only the trace ids seen since. Pure: no clock, no I/O.

>>> from engine.model.events import LogEvent
>>> def span(trace: str, error: bool) -> LogEvent:
...     level = "ERROR" if error else "INFO"
...     return LogEvent(1.0, level, "cart", "GET", "span", "GET", 5.0, {"trace_id": trace})
>>> examples = TraceExamples(per_service=2, link_template="https://jaeger/trace/{trace_id}")
>>> examples.observe([span("a1", True), span("b2", False), span("c3", False)])
>>> examples.annotations({"service": "cart"})
{'trace_ids': 'a1,c3', 'trace_url': 'https://jaeger/trace/a1'}
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from msgspec.structs import replace

from engine.model.alert import Alert
from engine.model.events import LogEvent

__all__ = ["TraceExamples"]


class TraceExamples:
    """The last few trace ids of each service, and the annotations they give an alert.

    Parameters
    ----------
    per_service:
        How many trace ids an alert carries (errors first, then the most recent).
    link_template:
        A URL with ``{trace_id}``, or ``None`` for no link.
    max_services:
        Services remembered (the least recently seen is dropped first).
    """

    __slots__ = ("_errors", "_recent", "link_template", "max_services", "per_service")

    def __init__(
        self, per_service: int = 3, link_template: str | None = None, max_services: int = 10_000
    ) -> None:
        self.per_service = per_service
        self.link_template = link_template
        self.max_services = max_services
        self._recent: dict[str, deque[str]] = {}
        self._errors: dict[str, deque[str]] = {}

    def observe(self, logs: Iterable[LogEvent]) -> None:
        """Remember the trace ids of these log events (and spans)."""
        for event in logs:
            trace = event.raw.get("trace_id")
            if not trace or not isinstance(trace, str):
                continue
            table = self._errors if event.is_error else self._recent
            service = event.service.split(":", 1)[0] if event.type == "span" else event.service
            for key in {service, event.service}:
                ids = table.get(key)
                if ids is None:
                    if len(table) >= self.max_services:
                        del table[next(iter(table))]
                    ids = table[key] = deque(maxlen=self.per_service)
                if trace not in ids:
                    ids.append(trace)

    def annotations(self, labels: Mapping[str, str]) -> dict[str, str]:
        """``trace_ids`` (and ``trace_url``) for a series with these labels, or nothing."""
        service = labels.get("service")
        if service is None:
            return {}
        picked: list[str] = []
        for table in (self._errors, self._recent):
            for trace in reversed(table.get(service, ())):  # the most recent first
                if trace not in picked and len(picked) < self.per_service:
                    picked.append(trace)
        if not picked:
            return {}
        out = {"trace_ids": ",".join(picked)}
        if self.link_template:
            out["trace_url"] = self.link_template.replace("{trace_id}", picked[0])
        return out

    def annotate(self, alerts: Sequence[Alert], logs: Iterable[LogEvent]) -> list[Alert]:
        """Observe ``logs`` (the batch's), then add trace annotations to ``alerts``.

        Resolved transitions carry them too: a notification shows an alert's latest transition,
        which is the resolved one when the incident ended before the group was sent.
        """
        self.observe(logs)
        out = []
        for alert in alerts:
            extra = self.annotations(alert.labels)
            out.append(
                replace(alert, annotations={**alert.annotations, **extra}) if extra else alert
            )
        return out
