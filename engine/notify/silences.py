"""Silences: time-boxed mutes of the alerts matching a set of matchers (Alertmanager's model).

A silence is *pending* before ``starts_at``, *active* from ``starts_at`` until ``ends_at`` and
*expired* from then on; only active silences mute alerts, so a silence stops applying by itself.
Expiring a silence early sets its ``ends_at`` to now. Silences come from two places:

- the HTTP API (:meth:`Silences.add_dict` reads Alertmanager's API v2 JSON); these are part of the
  dispatcher's saved state and can be updated and expired through the API;
- the config file (``[[silences]]``, :func:`silence_from_settings`); these are re-read at every
  start, have ids ``config-<hash>`` and cannot be changed through the API.

Times are epoch seconds (float, UTC) inside; the API shows them as RFC 3339.

>>> store = Silences(id_factory=lambda: "s1")
>>> store.add(parse_matchers(['service="api"']), starts_at=100.0, ends_at=200.0,
...           created_by="ops", comment="deploy", now=50.0)
's1'
>>> [store.is_silenced({"service": "api"}, now=t) for t in (60.0, 150.0)]
[[], ['s1']]
>>> store.get("s1").state(now=250.0)
<SilenceState.EXPIRED: 'expired'>
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from engine.model.times import rfc3339
from engine.notify.matchers import Matcher, MatchOp, parse_matcher, parse_matchers
from engine.notify.settings import SilenceSettings

__all__ = [
    "Silence",
    "SilenceState",
    "Silences",
    "UnknownSilenceError",
    "silence_from_settings",
]

#: Expired silences are forgotten this long after they ended (Alertmanager keeps them 120 h).
DEFAULT_RETENTION_SECONDS = 5 * 86400.0
CONFIG_ID_PREFIX = "config-"


class UnknownSilenceError(LookupError):
    """No silence has the given id."""


class SilenceState(enum.StrEnum):
    """Where a silence is in its life."""

    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


_STATE_RANK = {SilenceState.ACTIVE: 0, SilenceState.PENDING: 1, SilenceState.EXPIRED: 2}


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence.

    Attributes
    ----------
    id
        A uuid4 for silences made through the API, ``config-<hash>`` for configured ones.
    matchers
        All must match an alert's labels for the silence to mute it.
    starts_at, ends_at
        When it applies: ``starts_at <= now < ends_at`` (epoch seconds).
    created_by, comment
        Who made it and why.
    updated_at
        When it was last created, changed or expired (epoch seconds).
    """

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float = 0.0

    def state(self, now: float) -> SilenceState:
        """Pending, active or expired at ``now`` (epoch seconds)."""
        if now < self.starts_at:
            return SilenceState.PENDING
        if now < self.ends_at:
            return SilenceState.ACTIVE
        return SilenceState.EXPIRED

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher matches ``labels`` (regardless of time)."""
        return all(m.matches(labels) for m in self.matchers)

    def to_dict(self, now: float) -> dict[str, Any]:
        """The silence as Alertmanager's API v2 shows it, with its state at ``now``.

        >>> Silence("s1", parse_matchers(["env=~prod|dr"]), 0.0, 60.0, "ops", "x").to_dict(30.0)
        ... # doctest: +NORMALIZE_WHITESPACE
        {'id': 's1', 'status': {'state': 'active'}, 'updatedAt': '1970-01-01T00:00:00Z',
         'matchers': [{'name': 'env', 'value': 'prod|dr', 'isRegex': True, 'isEqual': True}],
         'startsAt': '1970-01-01T00:00:00Z', 'endsAt': '1970-01-01T00:01:00Z',
         'createdBy': 'ops', 'comment': 'x'}
        """
        return {
            "id": self.id,
            "status": {"state": self.state(now).value},
            "updatedAt": rfc3339(self.updated_at),
            "matchers": [
                {
                    "name": m.name,
                    "value": m.value,
                    "isRegex": m.op.is_regex,
                    "isEqual": m.op.is_equal,
                }
                for m in self.matchers
            ],
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
            "createdBy": self.created_by,
            "comment": self.comment,
        }

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable form that :meth:`from_state` reads back exactly."""
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "comment": self.comment,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Silence:
        """The silence :meth:`to_state` described."""
        return cls(
            id=str(state["id"]),
            matchers=parse_matchers(state["matchers"]),
            starts_at=float(state["starts_at"]),
            ends_at=float(state["ends_at"]),
            created_by=str(state["created_by"]),
            comment=str(state["comment"]),
            updated_at=float(state["updated_at"]),
        )


def silence_from_settings(settings: SilenceSettings) -> Silence:
    """A configured silence, with an id derived from its content (the same at every start).

    >>> s = SilenceSettings(matchers=("service=api",), ends_at=60.0, created_by="ops", comment="x")
    >>> silence_from_settings(s).id
    'config-52caf907f89e776f'
    """
    text = json.dumps(settings.model_dump(mode="json"), sort_keys=True)
    ident = CONFIG_ID_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]
    return Silence(
        id=ident,
        matchers=settings.parsed_matchers(),
        starts_at=settings.starts_at,
        ends_at=settings.ends_at,
        created_by=settings.created_by,
        comment=settings.comment,
    )


def _new_id() -> str:
    return str(uuid.uuid4())


class Silences:
    """The silences: configured ones and those made through the API.

    Parameters
    ----------
    config
        Silences from the config file (see :func:`silence_from_settings`); never saved in the
        state, never changed through the API.
    id_factory
        Makes the id of each new silence; uuid4 strings by default.
    """

    def __init__(
        self, config: Iterable[Silence] = (), *, id_factory: Callable[[], str] | None = None
    ) -> None:
        self._config = {s.id: s for s in config}
        self._api: dict[str, Silence] = {}
        self._new_id = id_factory or _new_id

    def __len__(self) -> int:
        return len(self._config) + len(self._api)

    def get(self, silence_id: str) -> Silence:
        """The silence with this id.

        Raises
        ------
        UnknownSilenceError
            If there is none.
        """
        found = self._api.get(silence_id) or self._config.get(silence_id)
        if found is None:
            raise UnknownSilenceError(f"no silence with id {silence_id!r}")
        return found

    def list_all(self, now: float) -> list[Silence]:
        """Every silence: active ones first, then pending, then expired, each by ``ends_at``."""
        pool = [*self._config.values(), *self._api.values()]
        return sorted(pool, key=lambda s: (_STATE_RANK[s.state(now)], s.ends_at, s.id))

    def active(self, now: float) -> list[Silence]:
        """The silences that apply at ``now``."""
        return [s for s in self.list_all(now) if s.state(now) is SilenceState.ACTIVE]

    def is_silenced(self, labels: Mapping[str, str], now: float) -> list[str]:
        """Ids of the active silences that match ``labels`` (empty: not silenced), sorted."""
        return sorted(
            s.id
            for s in (*self._config.values(), *self._api.values())
            if s.starts_at <= now < s.ends_at and s.matches(labels)
        )

    def add(
        self,
        matchers: Sequence[Matcher],
        *,
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str,
        now: float,
        silence_id: str | None = None,
    ) -> str:
        """Create a silence, or replace the API silence ``silence_id``; returns its id.

        A start in the past becomes ``now`` (unless an update keeps the silence's start).

        Raises
        ------
        ValueError
            ``<field>: <problem>`` if a field is invalid (see :meth:`add_dict` for the rules).
        UnknownSilenceError
            If ``silence_id`` is given but there is no such silence.
        """
        fields = {
            "matchers": "matchers",
            "starts_at": "starts_at",
            "ends_at": "ends_at",
            "created_by": "created_by",
            "comment": "comment",
            "id": "silence_id",
        }
        return self._add(
            tuple(matchers), starts_at, ends_at, created_by, comment, now, silence_id, fields
        )

    def add_dict(self, data: Any, now: float) -> str:
        """Create or update a silence from Alertmanager's API v2 JSON (``POST /api/v2/silences``).

        ``{"matchers": [{"name", "value", "isRegex", "isEqual" (default true)}], "startsAt",
        "endsAt", "createdBy", "comment", "id" (optional: update that silence)}``. Times are RFC
        3339 strings with a timezone, or epoch seconds.

        Rules: at least one matcher, not all matching the empty string; ``endsAt`` after
        ``startsAt`` and in the future; ``createdBy`` and ``comment`` not empty; configured
        silences cannot be updated.

        Raises
        ------
        ValueError
            ``<field>: <problem>``, with API field names (``matchers[0].name: required``).
        UnknownSilenceError
            If ``id`` is given but there is no such silence.

        >>> s = Silences(id_factory=lambda: "s1")
        >>> s.add_dict({"matchers": [{"name": "service", "value": "api", "isRegex": False}],
        ...             "startsAt": "2024-05-01T20:00:00Z", "endsAt": "2024-05-01T19:00:00Z",
        ...             "createdBy": "ops", "comment": "x"}, now=0.0)
        Traceback (most recent call last):
        ...
        ValueError: endsAt: must be after startsAt
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"body: expected a JSON object, got {type(data).__name__}")
        problems: list[str] = []
        known = {"id", "matchers", "startsAt", "endsAt", "createdBy", "comment", "status"}
        known |= {"updatedAt"}
        for key in sorted(set(data) - known, key=str):
            problems.append(f"{key}: unknown field")
        matchers = _api_matchers(data.get("matchers"), problems)
        starts_at = _api_time(data, "startsAt", problems)
        ends_at = _api_time(data, "endsAt", problems)
        created_by = _api_text(data, "createdBy", problems)
        comment = _api_text(data, "comment", problems)
        silence_id = data.get("id")
        if silence_id is not None and (not isinstance(silence_id, str) or not silence_id):
            problems.append("id: must be a non-empty string")
        if problems or starts_at is None or ends_at is None:
            raise ValueError("; ".join(problems))
        fields = {
            "matchers": "matchers",
            "starts_at": "startsAt",
            "ends_at": "endsAt",
            "created_by": "createdBy",
            "comment": "comment",
            "id": "id",
        }
        return self._add(
            matchers, starts_at, ends_at, created_by, comment, now, silence_id or None, fields
        )

    def _add(
        self,
        matchers: tuple[Matcher, ...],
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str,
        now: float,
        silence_id: str | None,
        names: Mapping[str, str],
    ) -> str:
        problems = []
        if not matchers:
            problems.append(f"{names['matchers']}: needs at least one matcher")
        elif all(m.matches({}) for m in matchers):
            problems.append(
                f"{names['matchers']}: at least one matcher must not match the empty string, "
                "or the silence would match every alert"
            )
        for key, value in (("starts_at", starts_at), ("ends_at", ends_at)):
            if not math.isfinite(value):
                problems.append(f"{names[key]}: must be a finite time, got {value!r}")
        if not ends_at > starts_at:
            problems.append(f"{names['ends_at']}: must be after {names['starts_at']}")
        elif not ends_at > now:
            problems.append(f"{names['ends_at']}: must be in the future")
        for key, text in (("created_by", created_by), ("comment", comment)):
            if not text.strip():
                problems.append(f"{names[key]}: must not be empty")
        if silence_id is not None:
            if silence_id in self._config:
                problems.append(
                    f"{names['id']}: silence {silence_id!r} is defined in the config file; "
                    "change it there"
                )
            elif silence_id not in self._api:
                raise UnknownSilenceError(f"no silence with id {silence_id!r}")
        if problems:
            raise ValueError("; ".join(problems))
        previous = None if silence_id is None else self._api[silence_id]
        if previous is None or starts_at != previous.starts_at:
            starts_at = max(starts_at, now)  # an update that keeps the start keeps it
        ident = self._new_id() if silence_id is None else silence_id
        self._api[ident] = Silence(
            id=ident,
            matchers=matchers,
            starts_at=starts_at,
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
            updated_at=now,
        )
        return ident

    def expire(self, silence_id: str, now: float) -> Silence:
        """End the silence now (a pending one never starts); returns the expired silence.

        Raises
        ------
        UnknownSilenceError
            If there is no such silence.
        ValueError
            If it is configured (change the config instead) or already expired.
        """
        silence = self.get(silence_id)
        if silence_id in self._config:
            raise ValueError(
                f"id: silence {silence_id!r} is defined in the config file; remove it there"
            )
        state = silence.state(now)
        if state is SilenceState.EXPIRED:
            raise ValueError(f"id: silence {silence_id!r} has already expired")
        starts_at = now if state is SilenceState.PENDING else silence.starts_at
        expired = replace(silence, starts_at=starts_at, ends_at=now, updated_at=now)
        self._api[silence_id] = expired
        return expired

    #: Alertmanager's ``DELETE /api/v2/silence/{id}`` expires the silence.
    delete = expire

    def upsert(self, silence: Silence) -> None:
        """Store an API silence made or changed elsewhere (replicated between workers).

        A silence with the id of a configured one is ignored: the config file wins.
        """
        if silence.id not in self._config:
            self._api[silence.id] = silence

    def gc(self, now: float, retention_seconds: float = DEFAULT_RETENTION_SECONDS) -> int:
        """Forget API silences that ended more than ``retention_seconds`` ago; how many."""
        old = [i for i, s in self._api.items() if s.ends_at <= now - retention_seconds]
        for ident in old:
            del self._api[ident]
        return len(old)

    def to_state(self) -> dict[str, Any]:
        """The API silences, JSON-serialisable (configured ones are not state)."""
        return {"silences": [self._api[i].to_state() for i in sorted(self._api)]}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace the API silences with those of ``state`` (configured ones stay)."""
        loaded = (Silence.from_state(item) for item in state["silences"])
        self._api = {s.id: s for s in loaded if s.id not in self._config}

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        config: Iterable[Silence] = (),
        *,
        id_factory: Callable[[], str] | None = None,
    ) -> Silences:
        """A store with ``config`` silences and the API silences of ``state``."""
        store = cls(config, id_factory=id_factory)
        store.load_state(state)
        return store


# --- API input --------------------------------------------------------------------------------


def _api_matchers(value: Any, problems: list[str]) -> tuple[Matcher, ...]:
    if value is None:
        problems.append("matchers: required")
        return ()
    if not isinstance(value, list):
        problems.append(f"matchers: expected a list, got {type(value).__name__}")
        return ()
    if not value:
        problems.append("matchers: needs at least one matcher")
        return ()
    out = []
    for i, item in enumerate(value):
        where = f"matchers[{i}]"
        if isinstance(item, str):  # also accept 'name="value"' text
            try:
                out.append(parse_matcher(item))
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
            continue
        if not isinstance(item, Mapping):
            problems.append(f"{where}: expected an object with name and value")
            continue
        extra = sorted(set(item) - {"name", "value", "isRegex", "isEqual"}, key=str)
        problems.extend(f"{where}.{key}: unknown field" for key in extra)
        name, text = item.get("name"), item.get("value")
        is_regex, is_equal = item.get("isRegex", False), item.get("isEqual", True)
        ok = True
        for key, got, kind in (
            ("name", name, str),
            ("value", text, str),
            ("isRegex", is_regex, bool),
            ("isEqual", is_equal, bool),
        ):
            if got is None:
                problems.append(f"{where}.{key}: required")
                ok = False
            elif not isinstance(got, kind):
                problems.append(f"{where}.{key}: expected a {kind.__name__}, got {got!r}")
                ok = False
        if not ok:
            continue
        op = MatchOp.from_flags(is_regex=bool(is_regex), is_equal=bool(is_equal))
        try:
            out.append(Matcher(str(name), op, str(text)))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    return tuple(out)


def _api_time(data: Mapping[str, Any], key: str, problems: list[str]) -> float | None:
    value = data.get(key)
    if value is None:
        problems.append(f"{key}: required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.append(f"{key}: expected an RFC 3339 time, got {value!r}")
        return None
    if not isinstance(value, str):
        return float(value)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        problems.append(f"{key}: {value!r} is not an RFC 3339 time such as 2024-05-01T20:00:00Z")
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        problems.append(f"{key}: {value!r} has no timezone (add Z or an offset)")
        return None
    return moment.timestamp()


def _api_text(data: Mapping[str, Any], key: str, problems: list[str]) -> str:
    value = data.get(key)
    if value is None:
        problems.append(f"{key}: required")
        return ""
    if not isinstance(value, str):
        problems.append(f"{key}: expected a string, got {value!r}")
        return ""
    return value
