"""The notification log: what each receiver was last told about each group.

Modelled on Alertmanager's ``nflog`` and its ``DedupStage``. An entry per (receiver, group key)
holds the alerts of the last successful notification, as keys ``<fingerprint>@<started_at>`` (see
:func:`engine.notify.grouping.alert_key`), split into firing and resolved, and when it was sent.
At each flush of a group, :func:`needs_update` compares what the group holds now with the entry:

- never notified: send if something fires (resolved-only groups are news to nobody);
- an alert fires that the receiver was not told about (or a new incident of one): send;
- nothing fires any more: nothing to send, as the receiver was told only of firing alerts it
  now knows resolved (when ``send_resolved``) or does not want to hear about (otherwise); the
  dispatcher records this silently for a receiver without ``send_resolved`` so the entry stops
  listing the firing alerts;
- with ``send_resolved``, an alert resolved since the last notification: send;
- otherwise send again once ``repeat_interval_seconds`` have passed since the last one.

>>> firing = frozenset({"a@1.0", "b@1.0"})
>>> needs_update(None, firing, frozenset(), send_resolved=True, repeat_interval_seconds=3600,
...              now=0.0)
True
>>> log = NotificationLog()
>>> entry = log.record("ops", "root:{}", firing, frozenset(), now=0.0)
>>> needs_update(entry, firing, frozenset(), send_resolved=True, repeat_interval_seconds=3600,
...              now=60.0)
False
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["NotificationEntry", "NotificationLog", "needs_update"]

#: Entries are forgotten this long after their last notification (Alertmanager: 120 h).
DEFAULT_RETENTION_SECONDS = 5 * 86400.0


@dataclass(frozen=True, slots=True)
class NotificationEntry:
    """What one receiver was last told about one group.

    Attributes
    ----------
    firing
        Keys of the alerts that were firing.
    resolved
        Keys of the alerts that were resolved.
    sent_at
        When the notification was delivered (epoch seconds).
    """

    firing: frozenset[str]
    resolved: frozenset[str]
    sent_at: float


def needs_update(
    entry: NotificationEntry | None,
    firing: Collection[str],
    resolved: Collection[str],
    *,
    send_resolved: bool,
    repeat_interval_seconds: float,
    now: float,
) -> bool:
    """Whether a group holding ``firing`` and ``resolved`` alerts must be notified again.

    Parameters
    ----------
    entry
        The receiver's last notification of the group, ``None`` if never notified.
    firing, resolved
        Keys of the group's alerts now (after silences and inhibition).
    send_resolved
        Whether the receiver wants to hear about resolved alerts.
    repeat_interval_seconds
        Send an unchanged firing group again after this long.
    now
        Epoch seconds.
    """
    if entry is None:
        return bool(firing)
    if not entry.firing.issuperset(firing):
        return True
    if not firing:
        # Everything the receiver knows about resolved. A receiver that wants resolved alerts
        # hears about them once (they are new in ``resolved``); one that does not, never.
        return send_resolved and bool(entry.firing) and not entry.resolved.issuperset(resolved)
    if send_resolved and not entry.resolved.issuperset(resolved):
        return True
    return now - entry.sent_at >= repeat_interval_seconds


class NotificationLog:
    """Entries by (receiver, group key)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], NotificationEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, receiver: str, group_key: str) -> NotificationEntry | None:
        """The receiver's last notification of the group, or ``None``."""
        return self._entries.get((receiver, group_key))

    def record(
        self,
        receiver: str,
        group_key: str,
        firing: Collection[str],
        resolved: Collection[str],
        now: float,
    ) -> NotificationEntry:
        """Remember a delivered notification (after success only); returns the new entry."""
        entry = NotificationEntry(frozenset(firing), frozenset(resolved), now)
        self._entries[(receiver, group_key)] = entry
        return entry

    def gc(
        self,
        now: float,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        keep: Collection[tuple[str, str]] = (),
    ) -> int:
        """Forget entries last sent more than ``retention_seconds`` ago; how many.

        An entry that still lists firing alerts is kept while its (receiver, group key) is in
        ``keep`` (the groups that exist), so a long-firing group is not notified afresh.
        """
        cutoff = now - retention_seconds
        old = [
            key
            for key, e in self._entries.items()
            if e.sent_at < cutoff and not (e.firing and key in keep)
        ]
        for key in old:
            del self._entries[key]
        return len(old)

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state (sorted, so equal logs give equal states)."""
        return {
            "entries": [
                {
                    "receiver": receiver,
                    "group_key": group_key,
                    "firing": sorted(e.firing),
                    "resolved": sorted(e.resolved),
                    "sent_at": e.sent_at,
                }
                for (receiver, group_key), e in sorted(self._entries.items())
            ]
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace the entries with those of ``state`` (from :meth:`to_state`)."""
        self._entries = {
            (str(item["receiver"]), str(item["group_key"])): NotificationEntry(
                frozenset(str(k) for k in item["firing"]),
                frozenset(str(k) for k in item["resolved"]),
                float(item["sent_at"]),
            )
            for item in state["entries"]
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> NotificationLog:
        """A log holding the entries of ``state``."""
        log = cls()
        log.load_state(state)
        return log
