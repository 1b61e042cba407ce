"""Alertmanager's API v2 views of Kestrel's silences and alerts (pure: no I/O, no clock).

What ``amtool`` and other Alertmanager clients read: silences filtered as Alertmanager filters
them (:func:`silence_matches_filter`), and the alerts the notifier holds in Alertmanager's
``gettableAlert`` form (:func:`alert_views`): labels, annotations, ``startsAt``, ``endsAt``,
``fingerprint``, ``receivers``, ``status`` (``active`` or ``suppressed``, with ``silencedBy``
and ``inhibitedBy``), selected by the query's matchers, receiver and states
(:class:`AlertQuery`).

>>> from engine.notify.matchers import parse_matchers
>>> s = Silence("s1", parse_matchers(['service="api"', 'env=~"prod|dr"']), 0.0, 9.0, "ops", "x")
>>> silence_matches_filter(s, parse_matchers(['service="api"']))
True
>>> silence_matches_filter(s, parse_matchers(['service="web"']))
False
>>> silence_matches_filter(s, parse_matchers(['team="a"']))  # the silence has no team matcher
False
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.model.alert import Alert, AlertStatus, alert_labels
from engine.model.times import rfc3339
from engine.notify.grouping import AggregationGroup
from engine.notify.matchers import Matcher, matches_all, parse_matcher
from engine.notify.silences import Silence

__all__ = [
    "AlertQuery",
    "alert_views",
    "parse_filter",
    "silence_matches_filter",
]


def parse_filter(texts: Iterable[str]) -> tuple[Matcher, ...]:
    """The matchers of a ``filter`` query parameter (one matcher per value, or several in
    braces and separated by commas, as ``{a="1",b=~"2"}``).

    Raises
    ------
    ValueError
        ``filter: bad matcher ...`` for the first that is not a matcher.

    >>> [str(m) for m in parse_filter(['{service="api", env=~"p.*"}', 'team!=a'])]
    ['service="api"', 'env=~"p.*"', 'team!="a"']
    """
    out: list[Matcher] = []
    for text in texts:
        body = text.strip()
        braced = body.startswith("{") and body.endswith("}")
        parts = _split_commas(body[1:-1]) if braced else [body]
        for part in parts:
            if not part.strip():
                continue
            try:
                out.append(parse_matcher(part))
            except ValueError as exc:
                raise ValueError(f"filter: {exc}") from None
    return tuple(out)


def _split_commas(text: str) -> list[str]:
    """Split at commas outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def silence_matches_filter(silence: Silence, filters: Sequence[Matcher]) -> bool:
    """Whether a silence passes a filter, as Alertmanager decides it.

    The silence's matchers are read as labels (name to value or pattern) and each filter matcher
    must match them; a filter for the empty value (``team=""``) also passes a silence that has no
    matcher on that name, and a negative one (``team!="a"``) one that has none.
    """
    values = {m.name: m.value for m in silence.matchers}
    for m in filters:
        present = m.name in values
        if not m.op.is_equal:
            if m.value == "" and present:
                continue
            if not m.matches({m.name: values.get(m.name, "")}):
                return False
        else:
            if m.value == "" and not present:
                continue
            if not present or not m.matches(values):
                return False
    return True


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """What ``GET /api/v2/alerts`` asks for (each state flag defaults to true, as there).

    Attributes
    ----------
    filters
        Matchers every alert's labels must satisfy.
    receiver
        A regular expression (anchored) one of the alert's receivers must match; ``None``: any.
    active, silenced, inhibited
        Include alerts that are not muted, silenced, inhibited.
    """

    filters: tuple[Matcher, ...] = ()
    receiver: str | None = None
    active: bool = True
    silenced: bool = True
    inhibited: bool = True
    _receiver_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            regex = None if self.receiver is None else re.compile(self.receiver)
        except re.error as exc:
            raise ValueError(f"receiver: invalid regular expression: {exc}") from None
        object.__setattr__(self, "_receiver_re", regex)

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]]) -> AlertQuery:
        """The query of URL parameters (``filter`` may repeat; booleans are ``true``/``false``).

        >>> q = AlertQuery.from_params({"filter": ['alertname="cpu"'], "silenced": ["false"]})
        >>> q.silenced, q.active, [str(m) for m in q.filters]
        (False, True, ['alertname="cpu"'])
        """
        flags: dict[str, bool] = {}
        for name in ("active", "silenced", "inhibited"):
            values = params.get(name) or ["true"]
            text = values[-1].strip().lower()
            if text not in ("true", "false"):
                raise ValueError(f"{name}: expected true or false, got {values[-1]!r}")
            flags[name] = text == "true"
        receivers = params.get("receiver") or []
        receiver = receivers[-1] if receivers and receivers[-1] else None
        return cls(parse_filter(params.get("filter") or []), receiver, **flags)

    def wants_receivers(self, names: Iterable[str]) -> bool:
        """Whether one of ``names`` matches :attr:`receiver`."""
        regex = self._receiver_re
        return regex is None or any(regex.fullmatch(n) for n in names)


def alert_views(
    groups: Iterable[AggregationGroup],
    *,
    silenced_by: Callable[[Mapping[str, str]], list[str]],
    inhibited_by: Callable[[Mapping[str, str], str], str | None],
    annotations: Callable[[Alert], Mapping[str, str]],
    query: AlertQuery,
    now: float,
) -> list[dict[str, Any]]:
    """The firing alerts of ``groups`` in Alertmanager's ``gettableAlert`` form.

    Parameters
    ----------
    groups
        The dispatcher's aggregation groups (an alert in several groups is shown once, with
        each group's receiver).
    silenced_by
        Ids of the active silences that match an alert's labels.
    inhibited_by
        The fingerprint of an alert inhibiting this one (labels, fingerprint), or ``None``.
    annotations
        An alert's annotations (summary, value, expected, score and its own).
    query
        Which alerts to show.
    now
        Epoch seconds (for ``updatedAt``).

    Returns
    -------
    list of dict
        Sorted by ``startsAt`` then fingerprint. A firing alert's ``endsAt`` is
        ``0001-01-01T00:00:00Z`` (unknown yet).
    """
    found: dict[str, tuple[Alert, set[str]]] = {}
    for group in groups:
        for grouped in group.alerts.values():
            alert = grouped.alert
            if alert.status is not AlertStatus.FIRING:
                continue
            _, receivers = found.setdefault(alert.fingerprint, (alert, set()))
            receivers.add(group.receiver)
    views = []
    for alert, receivers in found.values():
        labels = alert_labels(alert)
        if not matches_all(query.filters, labels) or not query.wants_receivers(receivers):
            continue
        silences = silenced_by(labels)
        inhibitor = inhibited_by(labels, alert.fingerprint)
        inhibitors = [] if inhibitor is None else [inhibitor]
        muted = bool(silences or inhibitors)
        if not (
            (query.active and not muted)
            or (query.silenced and silences)
            or (query.inhibited and inhibitors)
        ):
            continue
        views.append(
            {
                "labels": labels,
                "annotations": dict(annotations(alert)),
                "startsAt": rfc3339(alert.started_at),
                "endsAt": "0001-01-01T00:00:00Z",
                "updatedAt": rfc3339(now),
                "fingerprint": alert.fingerprint,
                "receivers": [{"name": name} for name in sorted(receivers)],
                "status": {
                    "state": "suppressed" if muted else "active",
                    "silencedBy": silences,
                    "inhibitedBy": inhibitors,
                },
            }
        )
    views.sort(key=lambda v: (v["startsAt"], v["fingerprint"]))
    return views
