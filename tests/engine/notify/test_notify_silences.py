"""engine.notify.silences: lifecycle, matching, the API v2 JSON shape, validation, state."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest

from engine.notify.matchers import parse_matchers
from engine.notify.settings import SilenceSettings
from engine.notify.silences import (
    Silence,
    Silences,
    SilenceState,
    UnknownSilenceError,
    silence_from_settings,
)

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
API = {"service": "api", "env": "prod"}


def store() -> Silences:
    ids = (f"s{i}" for i in itertools.count(1))
    return Silences(id_factory=lambda: next(ids))


def add(s: Silences, *matchers: str, start: float, end: float, now: float = T0) -> str:
    return s.add(
        parse_matchers(matchers or ['service="api"']),
        starts_at=start,
        ends_at=end,
        created_by="ops",
        comment="deploy",
        now=now,
    )


def test_active_pending_expired() -> None:
    s = store()
    active = add(s, start=T0, end=T0 + 600)
    pending = add(s, 'env="prod"', start=T0 + 300, end=T0 + 900)
    assert (active, pending) == ("s1", "s2")
    assert s.is_silenced(API, T0 + 10) == ["s1"]
    assert [x.id for x in s.active(T0 + 10)] == ["s1"]
    assert s.get("s2").state(T0 + 10) is SilenceState.PENDING
    assert s.is_silenced(API, T0 + 300) == ["s1", "s2"]  # a pending silence starts by itself
    assert s.is_silenced(API, T0 + 600) == ["s2"]  # and an expired one stops applying by itself
    assert s.get("s1").state(T0 + 600) is SilenceState.EXPIRED
    assert s.is_silenced(API, T0 + 900) == []
    assert s.is_silenced({"service": "web"}, T0 + 10) == []
    assert [x.id for x in s.list_all(T0 + 10)] == ["s1", "s2"]
    assert [x.id for x in s.list_all(T0 + 700)] == ["s2", "s1"]  # active, then expired


def test_start_in_the_past_becomes_now() -> None:
    s = store()
    add(s, start=T0 - 3600, end=T0 + 60, now=T0)
    assert s.get("s1").starts_at == T0
    assert s.get("s1").updated_at == T0


def test_expire() -> None:
    s = store()
    add(s, start=T0, end=T0 + 600)
    add(s, start=T0 + 300, end=T0 + 600)
    expired = s.expire("s1", now=T0 + 60)
    assert (expired.starts_at, expired.ends_at) == (T0, T0 + 60)
    assert s.is_silenced(API, T0 + 60) == []
    assert s.get("s1").state(T0 + 60) is SilenceState.EXPIRED
    s.delete("s2", now=T0 + 60)  # a pending silence never starts
    assert s.get("s2").state(T0 + 400) is SilenceState.EXPIRED
    assert s.is_silenced(API, T0 + 400) == []
    with pytest.raises(ValueError, match="already expired"):
        s.expire("s1", now=T0 + 120)
    with pytest.raises(UnknownSilenceError, match="no silence with id 'nope'"):
        s.expire("nope", now=T0)


def test_update_in_place_keeps_the_id() -> None:
    s = store()
    add(s, start=T0, end=T0 + 600)
    ident = s.add(
        parse_matchers(['service="web"']),
        starts_at=T0,
        ends_at=T0 + 60,
        created_by="ops",
        comment="changed",
        now=T0 + 10,
        silence_id="s1",
    )
    assert ident == "s1" and len(s) == 1
    assert s.is_silenced({"service": "web"}, T0 + 20) == ["s1"]
    with pytest.raises(UnknownSilenceError):
        add_with_id(s, "s9")


def add_with_id(s: Silences, ident: str) -> str:
    return s.add(
        parse_matchers(["a=b"]),
        starts_at=T0,
        ends_at=T0 + 60,
        created_by="x",
        comment="y",
        now=T0,
        silence_id=ident,
    )


def test_gc_drops_long_expired_only() -> None:
    s = store()
    add(s, start=T0, end=T0 + 60)
    add(s, start=T0, end=T0 + 6000)
    assert s.gc(T0 + 3600, retention_seconds=3600) == 0  # ended 3540 s ago
    assert s.gc(T0 + 3660, retention_seconds=3600) == 1
    assert [x.id for x in s.list_all(T0)] == ["s2"]


def test_add_validation() -> None:
    s = store()
    with pytest.raises(ValueError, match="ends_at: must be after starts_at"):
        add(s, start=T0 + 60, end=T0 + 60)
    with pytest.raises(ValueError, match="ends_at: must be in the future"):
        add(s, start=T0 - 120, end=T0 - 60)
    with pytest.raises(ValueError, match="matchers: at least one matcher must not match the empty"):
        add(s, 'env=~".*"', 'x!="y"', start=T0, end=T0 + 60)
    with pytest.raises(ValueError, match="matchers: needs at least one matcher"):
        s.add((), starts_at=T0, ends_at=T0 + 1, created_by="a", comment="b", now=T0)
    with pytest.raises(ValueError, match="created_by: must not be empty"):
        s.add(
            parse_matchers(["a=b"]),
            starts_at=T0,
            ends_at=T0 + 1,
            created_by=" ",
            comment="b",
            now=T0,
        )
    assert len(s) == 0


# -- the HTTP API form --------------------------------------------------------------------------


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "matchers": [
            {"name": "service", "value": "api", "isRegex": False, "isEqual": True},
            {"name": "env", "value": "prod|staging", "isRegex": True},
        ],
        "startsAt": "2023-11-14T22:13:20Z",
        "endsAt": "2023-11-14T23:13:20.5Z",
        "createdBy": "alice",
        "comment": "deploy",
    }
    return {**base, **overrides}


def test_api_dict_round_trip() -> None:
    s = store()
    ident = s.add_dict(body(), now=T0 - 10)
    shown = s.get(ident).to_dict(now=T0 + 1)
    assert shown == {
        "id": "s1",
        "status": {"state": "active"},
        "updatedAt": "2023-11-14T22:13:10Z",
        "matchers": [
            {"name": "service", "value": "api", "isRegex": False, "isEqual": True},
            {"name": "env", "value": "prod|staging", "isRegex": True, "isEqual": True},
        ],
        "startsAt": "2023-11-14T22:13:20Z",
        "endsAt": "2023-11-14T23:13:20.5Z",
        "createdBy": "alice",
        "comment": "deploy",
    }
    json.dumps(shown)
    # What the API shows can be posted back (an update of the same silence).
    assert s.add_dict(shown, now=T0 + 2) == "s1"
    assert s.get("s1").to_dict(now=T0 + 3) == {**shown, "updatedAt": "2023-11-14T22:13:22Z"}
    assert s.get("s1").to_dict(now=T0 - 20)["status"] == {"state": "pending"}
    assert s.get("s1").to_dict(now=T0 + 7200)["status"] == {"state": "expired"}


def test_api_accepts_matcher_text_and_negative_matchers() -> None:
    s = store()
    s.add_dict(
        body(matchers=['service="api"', {"name": "env", "value": "dev", "isEqual": False}]),
        now=T0,
    )
    assert s.is_silenced({"service": "api", "env": "prod"}, T0 + 1) == ["s1"]
    assert s.is_silenced({"service": "api", "env": "dev"}, T0 + 1) == []


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([], "body: expected a JSON object, got list"),
        (body(matchers=None), "matchers: required"),
        (body(matchers="service=api"), "matchers: expected a list, got str"),
        (body(matchers=[]), "matchers: needs at least one matcher"),
        (body(matchers=[{"value": "api"}]), "matchers[0].name: required"),
        (body(matchers=[{"name": "a", "value": 1}]), "matchers[0].value: expected a str, got 1"),
        (
            body(matchers=[{"name": "a", "value": "b", "isRegex": "yes"}]),
            "matchers[0].isRegex: expected a bool, got 'yes'",
        ),
        (
            body(matchers=[{"name": "a", "value": "(", "isRegex": True}]),
            "matchers[0]: invalid regular expression '('",
        ),
        (body(matchers=[{"name": "a b", "value": "x"}]), "matchers[0]: 'a b' is not a valid label"),
        (body(matchers=[{"name": "a", "value": "", "x": 1}]), "matchers[0].x: unknown field"),
        (body(matchers=["a=~.*"]), "matchers: at least one matcher must not match the empty"),
        (body(startsAt=None), "startsAt: required"),
        (body(endsAt="soon"), "endsAt: 'soon' is not an RFC 3339 time"),
        (body(endsAt="2023-11-14T23:00:00"), "endsAt: '2023-11-14T23:00:00' has no timezone"),
        (body(endsAt=True), "endsAt: expected an RFC 3339 time, got True"),
        (body(endsAt="2023-11-14T22:00:00Z"), "endsAt: must be after startsAt"),
        (body(createdBy=""), "createdBy: must not be empty"),
        (body(comment=5), "comment: expected a string, got 5"),
        (body(id=""), "id: must be a non-empty string"),
        (body(colour="red"), "colour: unknown field"),
    ],
)
def test_api_validation_names_the_field(data: Any, problem: str) -> None:
    s = store()
    with pytest.raises(ValueError, match=re.escape(problem)):
        s.add_dict(data, now=T0 - 10)
    assert len(s) == 0


def test_api_reports_every_problem_at_once() -> None:
    with pytest.raises(ValueError, match="createdBy: required") as info:
        store().add_dict(body(createdBy=None, endsAt="x", matchers=[{}]), now=T0)
    for field in ("matchers[0].name", "endsAt", "createdBy"):
        assert field + ":" in str(info.value)


def test_api_unknown_id_is_a_lookup_error() -> None:
    with pytest.raises(UnknownSilenceError):
        store().add_dict(body(id="missing"), now=T0 - 10)


# -- configured silences and state --------------------------------------------------------------


def configured() -> Silence:
    settings = SilenceSettings(
        matchers=('service="batch"',),
        starts_at=T0,
        ends_at=T0 + 3600,
        created_by="ops",
        comment="nightly",
    )
    return silence_from_settings(settings)


def test_configured_silences_apply_but_are_not_state_nor_editable() -> None:
    cfg = configured()
    assert cfg.id == configured().id and cfg.id.startswith("config-")
    s = Silences([cfg], id_factory=lambda: "s1")
    assert s.is_silenced({"service": "batch"}, T0 + 1) == [cfg.id]
    with pytest.raises(ValueError, match="defined in the config file"):
        s.expire(cfg.id, now=T0 + 1)
    with pytest.raises(ValueError, match="defined in the config file"):
        s.add_dict(body(id=cfg.id), now=T0 - 10)
    assert s.to_state() == {"silences": []}


def test_state_round_trip_is_exact() -> None:
    s = store()
    add(s, 'msg=~"a \\"quoted\\" \\\\d+"', 'env!="dev"', start=T0 + 0.123456789, end=T0 + 1e3 / 3)
    add(s, start=T0, end=T0 + 60)
    s.expire("s2", now=T0 + 1.5)
    state = json.loads(json.dumps(s.to_state()))
    restored = Silences.from_state(state, [configured()])
    assert restored.to_state() == s.to_state()
    assert restored.get("s1") == s.get("s1")
    assert restored.get(configured().id) == configured()
    assert restored.is_silenced({"msg": 'a "quoted" 42'}, T0 + 1) == ["s1"]
