"""Inhibition: while a *source* alert fires, matching *target* alerts are not notified.

The Alertmanager rule: a target (an alert matching ``target_matchers``) is muted when some other
**firing** alert matches ``source_matchers`` and has the same value as the target for every label
in ``equal`` (a missing label counting as the empty string). When the target matches the source
matchers too, sources that also match the target matchers do not count, so two alerts of the same
kind cannot mute each other (and no alert mutes itself). When the source resolves, the target is
notified again at its group's next flush.

The inhibitor is fed every alert transition (:meth:`Inhibitor.observe`) and keeps only the firing
ones, by fingerprint, indexed per rule by their ``equal`` values.

>>> from engine.notify.matchers import parse_matchers
>>> rule = InhibitRule(parse_matchers(["severity=critical"]), parse_matchers(["severity=warning"]),
...                    ("service",))
>>> inhibitor = Inhibitor([rule])
>>> inhibitor.observe_labels("src", {"severity": "critical", "service": "api"}, 10.0, firing=True)
>>> inhibitor.is_inhibited({"severity": "warning", "service": "api"}, "t1")
True
>>> inhibitor.is_inhibited({"severity": "warning", "service": "web"}, "t2")
False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.model.alert import Alert, AlertStatus, alert_labels
from engine.notify.matchers import Matcher, matches_all
from engine.notify.settings import InhibitRuleSettings

__all__ = ["InhibitRule", "Inhibitor"]


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """One inhibition rule: ``source`` alerts mute ``target`` alerts with equal ``equal`` labels."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: InhibitRuleSettings) -> InhibitRule:
        """The rule of an ``[[inhibit_rules]]`` entry."""
        return cls(
            settings.parsed_source_matchers(),
            settings.parsed_target_matchers(),
            tuple(settings.equal),
        )

    def equal_values(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        """The values of the ``equal`` labels (missing = empty string)."""
        return tuple(labels.get(name, "") for name in self.equal)


@dataclass(frozen=True, slots=True)
class _Firing:
    started_at: float
    labels: dict[str, str]


class Inhibitor:
    """Decides which alerts are inhibited, from the alerts currently firing.

    Parameters
    ----------
    rules
        The rules, as :class:`InhibitRule` or config entries.
    """

    def __init__(self, rules: Iterable[InhibitRule | InhibitRuleSettings] = ()) -> None:
        self.rules = tuple(
            r if isinstance(r, InhibitRule) else InhibitRule.from_settings(r) for r in rules
        )
        self._firing: dict[str, _Firing] = {}
        # Per rule: equal-label values -> {fingerprint: labels} of firing alerts matching source.
        self._sources: list[dict[tuple[str, ...], dict[str, dict[str, str]]]] = [
            {} for _ in self.rules
        ]

    def __len__(self) -> int:
        """How many firing alerts it knows."""
        return len(self._firing)

    def observe(self, alert: Alert) -> None:
        """Take note of an alert transition: keep it while firing, forget it once resolved."""
        self.observe_labels(
            alert.fingerprint,
            alert_labels(alert),
            alert.started_at,
            firing=alert.status is AlertStatus.FIRING,
        )

    def observe_labels(
        self, fingerprint: str, labels: Mapping[str, str], started_at: float, *, firing: bool
    ) -> None:
        """:meth:`observe` from an alert's parts; a version older than the known one is ignored.

        Parameters
        ----------
        fingerprint
            The alert's fingerprint.
        labels
            Its labels as routing sees them (:func:`engine.model.alert.alert_labels`).
        started_at
            When its incident started (epoch seconds).
        firing
            Whether it is firing (else resolved).
        """
        known = self._firing.get(fingerprint)
        if known is not None:
            if started_at < known.started_at:
                return
            self._drop(fingerprint, known)
        if firing:
            entry = _Firing(started_at, dict(labels))
            self._firing[fingerprint] = entry
            for rule, index in zip(self.rules, self._sources, strict=True):
                if matches_all(rule.source, entry.labels):
                    index.setdefault(rule.equal_values(entry.labels), {})[fingerprint] = (
                        entry.labels
                    )

    def _drop(self, fingerprint: str, known: _Firing) -> None:
        del self._firing[fingerprint]
        for rule, index in zip(self.rules, self._sources, strict=True):
            key = rule.equal_values(known.labels)
            bucket = index.get(key)
            if bucket is not None and bucket.pop(fingerprint, None) is not None and not bucket:
                del index[key]

    def inhibited_by(self, labels: Mapping[str, str], fingerprint: str) -> str | None:
        """The fingerprint of a firing alert that inhibits this one, or ``None``.

        Parameters
        ----------
        labels
            The candidate target's labels.
        fingerprint
            Its fingerprint (an alert never inhibits itself).
        """
        for rule, index in zip(self.rules, self._sources, strict=True):
            if not matches_all(rule.target, labels):
                continue
            bucket = index.get(rule.equal_values(labels))
            if not bucket:
                continue
            two_sided = matches_all(rule.source, labels)
            for source_fp, source_labels in bucket.items():
                if source_fp == fingerprint:
                    continue
                if two_sided and matches_all(rule.target, source_labels):
                    continue
                return source_fp
        return None

    def is_inhibited(self, labels: Mapping[str, str], fingerprint: str) -> bool:
        """Whether a firing source alert mutes the alert with ``labels`` and ``fingerprint``."""
        return self.inhibited_by(labels, fingerprint) is not None

    def to_state(self) -> dict[str, Any]:
        """The firing alerts it knows, JSON-serialisable."""
        return {
            "firing": [
                {"fingerprint": fp, "started_at": f.started_at, "labels": dict(f.labels)}
                for fp, f in sorted(self._firing.items())
            ]
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace what it knows with ``state`` (from :meth:`to_state`)."""
        self._firing = {}
        self._sources = [{} for _ in self.rules]
        for item in state["firing"]:
            self.observe_labels(
                str(item["fingerprint"]),
                {str(k): str(v) for k, v in item["labels"].items()},
                float(item["started_at"]),
                firing=True,
            )

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], rules: Iterable[InhibitRule | InhibitRuleSettings] = ()
    ) -> Inhibitor:
        """An inhibitor with ``rules`` that knows the firing alerts of ``state``."""
        inhibitor = cls(rules)
        inhibitor.load_state(state)
        return inhibitor
