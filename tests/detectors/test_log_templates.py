"""The template miner: its grouping on Loghub data with ground truth, its state and its bounds."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from detectors.log_templates import (
    TemplateMiner,
    _mask_token,
    _masked_text,
    _TokenCache,
    mask_message,
)

LOGHUB = Path(__file__).resolve().parents[2].parent / "shared" / "loghub"


def _grouping_accuracy(truth: list[str], predicted: list[str]) -> float:
    """logparser's grouping accuracy: lines whose predicted group is exactly their true group."""
    true_groups: dict[str, set[int]] = defaultdict(set)
    pred_groups: dict[str, set[int]] = defaultdict(set)
    for i, (t, p) in enumerate(zip(truth, predicted, strict=True)):
        true_groups[t].add(i)
        pred_groups[p].add(i)
    correct = 0
    for members in pred_groups.values():
        ids = Counter(truth[i] for i in members)
        if len(ids) == 1 and true_groups[next(iter(ids))] == members:
            correct += len(members)
    return correct / len(truth)


def _loghub(name: str) -> list[dict[str, str]]:
    path = LOGHUB / f"{name}_2k.csv"
    if not path.exists():
        pytest.fail(f"{path} is missing: the Loghub-2k samples live in ../shared/loghub")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    ("name", "floor"), [("Linux", 0.85), ("OpenStack", 0.9), ("Proxifier", 0.9)]
)
def test_grouping_accuracy_on_loghub_slices(name: str, floor: float) -> None:
    """A quality floor on the first 1,000 lines of three sets the old miner did worst on."""
    rows = _loghub(name)[:1000]
    miner = TemplateMiner()
    predicted = [miner.add(r["Content"])[0].id for r in rows]
    accuracy = _grouping_accuracy([r["EventId"] for r in rows], predicted)
    print(f"{name}[:1000] grouping accuracy {accuracy:.4f}, {len(miner)} templates")
    assert accuracy >= floor


def test_state_round_trip_gives_identical_results() -> None:
    rows = _loghub("OpenStack")
    first = TemplateMiner(max_templates=20)
    for r in rows[:1000]:
        first.add(r["Content"])
    clone = TemplateMiner.from_state(first.to_state(), max_templates=20)
    for r in rows[1000:]:
        a, new_a = first.add(r["Content"])
        b, new_b = clone.add(r["Content"])
        assert (a.id, a.text, new_a) == (b.id, b.text, new_b)
    assert [(t.id, t.tokens) for t in first.templates()] == [
        (t.id, t.tokens) for t in clone.templates()
    ]


def test_templates_are_bounded() -> None:
    miner = TemplateMiner(max_templates=3)
    for word in ["alpha", "beta", "gamma", "delta", "epsilon"]:
        miner.add(f"{word} started")
    assert [t.text for t in miner.templates()] == [
        "gamma started",
        "delta started",
        "epsilon started",
    ]


def test_learned_wildcards_do_not_snowball() -> None:
    miner = TemplateMiner()
    for i in range(50):
        miner.add(f"request {i} done in {i}ms")
    other, new = miner.add("request queue drained in backlog")
    assert new
    assert other.text == "request queue drained in backlog"


def test_malformed_state_is_rejected() -> None:
    with pytest.raises(ValueError, match="templates"):
        TemplateMiner.from_state({"next_id": 1, "templates": [["t1", "x"]]})


def test_masks_keep_words_and_drop_obvious_parameters() -> None:
    assert mask_message("job_42 took 3.5s on node-7 (en0:) at Fri Jun 17 07:07:00 2005") == (
        "<*> took <*> on node-<*> (en0:) at <*>"
    )


_TRICKY_TOKENS = [
    *("0x1f", "1x1f", "0x", "x0", "an350", "an351,", "J18", "deadbe12", "deadbe12,", "Deadbeef"),
    *("10.0.0.7:80", "/10.251.43.21:50010", "1.2.3.4.", "12:07:00", "12:07:00.", "fe80::1:2"),
    *("core.20367", "core.123456789", "blk_-1608999687919862906", "size=629060,", "(3853437)"),
    *("e820", 'HTTP/1.1"', "12ms", "<1", "-3", "+7.5%", "a1b2c3d4-1111-2222-3333-444455556666"),
    *("x\udcfe3", "é٣4", "٣٤٥", "v2.0.1-rc3", "user42@host7", "0.0.0.0"),
]


def test_masking_through_token_shapes_equals_masking_each_token() -> None:
    """The miner masks a token through its shape (digits 2-9 as 1): same result as masking it.

    Run on every token of the Loghub samples and on tricky ones, with a roomy cache and with a
    tiny one (emptied all the time).
    """
    messages = [
        r["Content"] for name in ("BGL", "HDFS", "Proxifier", "Thunderbird") for r in _loghub(name)
    ]
    messages.append(" ".join(_TRICKY_TOKENS))
    tokens = sorted({t for m in messages for t in m.split()} | set(_TRICKY_TOKENS))
    for size in (100_000, 3):
        cache = _TokenCache(size)
        differ = []
        for token in tokens:
            if len(cache) >= size:
                cache.clear()
            if cache[token] != _mask_token(token):
                differ.append((token, cache[token], _mask_token(token)))
        print(f"cache of {size}: {len(tokens)} tokens, {len(cache._shapes)} shapes at the end")
        assert differ == []
    miner = TemplateMiner(cache_size=5)
    assert [_masked_text(m, miner._token_cache, 5) for m in messages] == [
        mask_message(m) for m in messages
    ]


def test_tiny_caches_change_no_result() -> None:
    """Speed caches of one entry (emptied at every message) give the same templates and ids."""
    rows = _loghub("OpenStack")[:600] + _loghub("Linux")[:600]
    roomy, tiny = TemplateMiner(max_templates=40), TemplateMiner(max_templates=40, cache_size=1)
    for r in rows:
        a, new_a = roomy.add(r["Content"])
        b, new_b = tiny.add(r["Content"])
        assert (a.id, a.text, a.count, new_a, roomy.evicted) == (
            b.id,
            b.text,
            b.count,
            new_b,
            tiny.evicted,
        )
    assert roomy.to_state() == tiny.to_state()
    print(f"{len(rows)} lines, {len(roomy)} templates kept, next id {roomy.to_state()['next_id']}")
