"""The routing tree: which channels an alert goes to, and how it is grouped and timed there.

A root route (``[routing]``) takes every alert; its child routes (``[[routing.routes]]``) are tried
in order and the first whose matchers match takes the alert, unless it has ``continue = true``, in
which case the next ones are tried too. When no child route matches, the parent route does. Child
routes nest to any depth (``[[routing.routes.routes]]``), as Alertmanager's do. Settings a child
route leaves out (channels, ``group_by``, timings) are inherited from its parent.

Each match names its route with a stable ``route_id`` (``root``, ``routes[2]``,
``routes[2].routes[0]``), used in the group key. Changing the order of routes in the config
changes the ids (and so the groups), as in Alertmanager where the group key contains the route's
path.

>>> from engine.notify.settings import RoutingSettings
>>> root = Route.from_settings(
...     RoutingSettings.model_validate(
...         {"routes": [{"matchers": ['severity="critical"'], "channels": ["pager"]}]}
...     ),
...     ["ops", "pager"],
... )
>>> [(m.route_id, m.channels) for m in root.match({"severity": "critical", "service": "api"})]
[('routes[0]', ('pager',))]
>>> [(m.route_id, m.channels) for m in root.match({"severity": "warning", "service": "api"})]
[('root', ('ops', 'pager'))]
>>> m = root.match({"alertname": "cpu", "service": "api", "host": "a"})[0]
>>> group_key(m.route_id, m.group_labels({"alertname": "cpu", "service": "api", "host": "a"}))
'root:{service="api"}'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.notify.matchers import Matcher, matches_all
from engine.notify.settings import GROUP_BY_ALL, RouteSettings, RoutingSettings

__all__ = ["ROOT_ROUTE_ID", "Route", "RouteMatch", "group_key"]

ROOT_ROUTE_ID = "root"


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """A route that took an alert, with its resolved settings.

    Attributes
    ----------
    route_id
        ``root``, ``routes[<index>]``, or a nested ``routes[<i>].routes[<j>]``.
    channels
        Channel names to notify (may be empty: the alert is dropped on purpose).
    group_by
        Labels whose values make the group (ignored when ``group_by_all``).
    group_by_all
        Group by every label (``group_by = ["..."]``): one group per alert.
    group_wait_seconds, group_interval_seconds, repeat_interval_seconds
        The route's timings, in seconds.
    """

    route_id: str
    channels: tuple[str, ...]
    group_by: tuple[str, ...]
    group_by_all: bool
    group_wait_seconds: float
    group_interval_seconds: float
    repeat_interval_seconds: float

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that define the alert's group, sorted by name.

        Labels in ``group_by`` that the alert does not have are left out (as in Alertmanager).

        >>> RouteMatch("root", (), ("service", "env"), False, 0, 1, 1).group_labels(
        ...     {"service": "api", "host": "a"})
        {'service': 'api'}
        """
        if self.group_by_all:
            return {k: labels[k] for k in sorted(labels)}
        return {k: labels[k] for k in sorted(self.group_by) if k in labels}


@dataclass(frozen=True, slots=True)
class Route:
    """A node of the routing tree (the root, or a child route).

    Build the tree with :meth:`from_settings`; the root always matches.
    """

    settings: RouteMatch
    matchers: tuple[Matcher, ...]
    continue_: bool
    children: tuple[Route, ...]

    @property
    def route_id(self) -> str:
        """``root``, ``routes[<index>]`` or a nested ``routes[<i>].routes[<j>]``."""
        return self.settings.route_id

    @classmethod
    def from_settings(cls, settings: RoutingSettings, channel_names: Iterable[str]) -> Route:
        """The routing tree of ``settings``.

        Parameters
        ----------
        settings
            The ``[routing]`` section.
        channel_names
            The configured channels, in config order. A root route without ``channels`` notifies
            all of them.

        Raises
        ------
        ValueError
            If a route names a channel that is not configured; the message lists every such name
            with its key path.
        """
        known = list(dict.fromkeys(channel_names))
        problems = settings.channel_problems(known)
        if problems:
            raise ValueError("; ".join(problems))
        root_group_by = tuple(settings.group_by)
        root = RouteMatch(
            route_id=ROOT_ROUTE_ID,
            channels=tuple(known if settings.channels is None else settings.channels),
            group_by=() if root_group_by == (GROUP_BY_ALL,) else root_group_by,
            group_by_all=root_group_by == (GROUP_BY_ALL,),
            group_wait_seconds=settings.group_wait_seconds,
            group_interval_seconds=settings.group_interval_seconds,
            repeat_interval_seconds=settings.repeat_interval_seconds,
        )
        children = tuple(
            cls._child(child, f"routes[{i}]", root) for i, child in enumerate(settings.routes)
        )
        return cls(root, (), False, children)

    @classmethod
    def _child(cls, settings: RouteSettings, route_id: str, parent: RouteMatch) -> Route:
        """The subtree of ``settings``; what it leaves out comes from ``parent``."""
        if settings.group_by is None:
            group_by, by_all = parent.group_by, parent.group_by_all
        else:
            by_all = tuple(settings.group_by) == (GROUP_BY_ALL,)
            group_by = () if by_all else tuple(settings.group_by)
        resolved = RouteMatch(
            route_id=route_id,
            channels=parent.channels if settings.channels is None else tuple(settings.channels),
            group_by=group_by,
            group_by_all=by_all,
            group_wait_seconds=_or(settings.group_wait_seconds, parent.group_wait_seconds),
            group_interval_seconds=_or(
                settings.group_interval_seconds, parent.group_interval_seconds
            ),
            repeat_interval_seconds=_or(
                settings.repeat_interval_seconds, parent.repeat_interval_seconds
            ),
        )
        children = tuple(
            cls._child(child, f"{route_id}.routes[{i}]", resolved)
            for i, child in enumerate(settings.routes)
        )
        return cls(resolved, settings.parsed_matchers(), settings.continue_, children)

    def match(self, labels: Mapping[str, str]) -> list[RouteMatch]:
        """The routes that take an alert with ``labels`` (at least one for the root).

        Child routes are tried in order; the first match ends the search unless that route has
        ``continue``. Without any matching child, this route itself matches.
        """
        if not matches_all(self.matchers, labels):
            return []
        found: list[RouteMatch] = []
        for child in self.children:
            matched = child.match(labels)
            if matched:
                found.extend(matched)
                if not child.continue_:
                    break
        return found or [self.settings]

    def find(self, route_id: str) -> RouteMatch | None:
        """The settings of the route with ``route_id`` in this tree, or ``None``."""
        if self.route_id == route_id:
            return self.settings
        for child in self.children:
            found = child.find(route_id)
            if found is not None:
                return found
        return None


def group_key(route_id: str, group_labels: Mapping[str, str]) -> str:
    """The stable key of a group: ``<route_id>:{name="value",...}``, labels sorted by name.

    Values are JSON-quoted, so keys of different groups never collide.

    >>> group_key("routes[1]", {"service": "api", "env": 'p"rod'})
    'routes[1]:{env="p\\\\"rod",service="api"}'
    """
    inner = ",".join(
        f"{k}={json.dumps(group_labels[k], ensure_ascii=False)}" for k in sorted(group_labels)
    )
    return f"{route_id}:{{{inner}}}"


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
