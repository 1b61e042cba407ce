"""Alert notification: routing, grouping, silences, inhibition, flap holding and deduplication.

Alertmanager's model, as pure decisions (no I/O, no clock: every call takes ``now`` in epoch
seconds) and JSON-serialisable state. The flow of one alert transition:

1. :meth:`Dispatcher.ingest` computes its labels (``alertname`` = series, ``detector``,
   ``severity``, series labels), records the transition for flap detection, tells the
   :class:`Inhibitor`, and lets the :class:`Route` tree choose the routes and channels it goes to.
   In each, it joins the aggregation group of its group labels (``group_by``), one per channel.
2. :meth:`Dispatcher.due` flushes each group ``group_wait_seconds`` after it was created and then
   every ``group_interval_seconds``: silenced and inhibited alerts are left out, flapping ones are
   announced once then held, and the :class:`NotificationLog` decides whether the channel must hear
   about the group again (new firing alerts, resolved ones if it wants them, or
   ``repeat_interval_seconds`` passed).
3. The caller delivers each :class:`PendingNotification` (one per group and channel, covering all
   the group's alerts) and reports :meth:`Dispatcher.ack` or :meth:`Dispatcher.nack`; only an ack
   is recorded in the log, so a failed notification is retried at the next flush.
   :meth:`Dispatcher.fate_of_dead` says whether a notification given up on still needs a replay.

Config (:mod:`engine.notify.settings`): ``[routing]`` with ``[[routing.routes]]``,
``[[silences]]`` and ``[[inhibit_rules]]``; :func:`build_dispatcher` builds a dispatcher from them.
"""

from engine.notify.dispatcher import (
    FLAPPING_ANNOTATION,
    DeadFate,
    Dispatcher,
    PendingNotification,
    build_dispatcher,
)
from engine.notify.flapping import FlapDetector
from engine.notify.grouping import AggregationGroup, alert_key
from engine.notify.inhibit import Inhibitor, InhibitRule
from engine.notify.matchers import Matcher, MatchOp, matches_all, parse_matcher, parse_matchers
from engine.notify.nflog import NotificationEntry, NotificationLog, needs_update
from engine.notify.routes import Route, RouteMatch, group_key
from engine.notify.settings import (
    InhibitRuleSettings,
    RouteSettings,
    RoutingSettings,
    SilenceSettings,
)
from engine.notify.silences import (
    Silence,
    Silences,
    SilenceState,
    UnknownSilenceError,
    silence_from_settings,
)

__all__ = [
    "FLAPPING_ANNOTATION",
    "AggregationGroup",
    "DeadFate",
    "Dispatcher",
    "FlapDetector",
    "InhibitRule",
    "InhibitRuleSettings",
    "Inhibitor",
    "MatchOp",
    "Matcher",
    "NotificationEntry",
    "NotificationLog",
    "PendingNotification",
    "Route",
    "RouteMatch",
    "RouteSettings",
    "RoutingSettings",
    "Silence",
    "SilenceSettings",
    "SilenceState",
    "Silences",
    "UnknownSilenceError",
    "alert_key",
    "build_dispatcher",
    "group_key",
    "matches_all",
    "needs_update",
    "parse_matcher",
    "parse_matchers",
    "silence_from_settings",
]
