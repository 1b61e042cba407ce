"""kestrel_client without a broker: records, logging records, timing, the spool's bounds."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.formats.base import DecodeContext
from engine.formats.kestrel_json import KestrelJsonDecoder
from kestrel_client import Spool, StructuredLogger, bind, encode, log_record, record_from_logging


class FakePublisher:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def publish(self, record: dict[str, Any]) -> None:
        self.records.append(record)


def _decode(records: list[dict[str, Any]]) -> Any:
    return KestrelJsonDecoder("log")(
        b"[" + b",".join(map(encode, records)) + b"]", DecodeContext("logs")
    )


def test_structured_logger_and_timed_write_what_kestrel_decodes() -> None:
    pub = FakePublisher()
    log = StructuredLogger("assistant", pub, clock=lambda: 1_700_000_000.0)  # type: ignore[arg-type]
    with bind(session_id="s1", user_id="u1"):
        log.info("task created", type="task_created", task="t9")
        with log.timed("llm_call", model="large"):
            pass
        with pytest.raises(RuntimeError), log.timed("tool", type="tool_executed"):
            raise RuntimeError("boom")
    log.warning("no context here")

    @log.timed("fetch")
    async def fetch() -> int:
        return 7

    assert asyncio.run(fetch()) == 7
    decoded = _decode(pub.records)
    assert decoded.rejected == []
    events = decoded.events
    print([(e.level, e.type, e.operation, e.duration_ms) for e in events])
    assert [e.level for e in events] == ["INFO", "INFO", "ERROR", "WARNING", "INFO"]
    assert {e.service for e in events} == {"assistant"}
    assert [e.operation for e in events] == [None, "llm_call", "tool", None, "fetch"]
    assert all(e.duration_ms is not None and e.duration_ms >= 0 for e in events if e.operation)
    first, llm, tool, plain = pub.records[:4]
    assert (first["session_id"], first["user_id"], first["type"]) == ("s1", "u1", "task_created")
    assert first["context"] == {"task": "t9"}
    assert llm["context"] == {"model": "large"} and llm["type"] == "performance"
    assert tool["type"] == "tool_executed" and tool["context"]["error"] == "RuntimeError: boom"
    assert "session_id" not in plain and "context" not in plain


def test_a_logging_record_keeps_extra_fields_and_the_traceback() -> None:
    logger = logging.getLogger("tests.kestrel_client")
    try:
        raise ValueError("bad")
    except ValueError:
        rec = logger.makeRecord(
            logger.name,
            logging.ERROR,
            "f.py",
            3,
            "failed %d",
            (2,),
            __import__("sys").exc_info(),
            extra={"type": "error_occurred", "user_id": "u7", "order": 12},
        )
    with bind(session_id="s2"):
        event = record_from_logging(rec, "shop")
    assert event["message"] == "failed 2" and event["level"] == "ERROR"
    assert (event["type"], event["user_id"], event["session_id"]) == ("error_occurred", "u7", "s2")
    assert event["context"]["order"] == 12
    assert "ValueError: bad" in event["context"]["exception"]
    assert _decode([event]).rejected == []


def test_log_record_refuses_an_empty_service_and_unknown_levels() -> None:
    with pytest.raises(ValueError, match="service"):
        log_record(0.0, "info", "", "x")
    with pytest.raises(ValueError, match="unknown level"):
        log_record(0.0, "verbose", "api", "x")


def test_the_spool_stays_within_its_bound_and_counts_what_it_drops(tmp_path: Path) -> None:
    spool = Spool(tmp_path, file_bytes=1000, max_files=3)
    lines = [orjson.dumps({"n": i, "pad": "x" * 40}) for i in range(1000)]
    dropped = sum(spool.append(lines[i : i + 10]) for i in range(0, 1000, 10))
    files = spool.files()
    size = sum(p.stat().st_size for p in files)
    print(f"files={len(files)} bytes={size} pending={spool.pending()} dropped={dropped}")
    assert len(files) <= 3 and size <= 3 * (1000 + 60)
    assert spool.pending() + dropped == 1000 and dropped > 0
    # What is left is the newest records, read back in order, by a new process too.
    pending = spool.pending()
    spool.close()
    again = Spool(tmp_path, file_bytes=1000, max_files=3)
    assert again.pending() == pending
    got: list[int] = []
    while batch := again.read(7):
        got.extend(orjson.loads(line)["n"] for line in batch)
        again.commit(len(batch))
    assert got == list(range(1000 - len(got), 1000))
    assert again.pending() == 0 and again.files() == []


def test_an_uncommitted_read_is_read_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path, file_bytes=10_000, max_files=2)
    spool.append([b"a", b"b", b"c"])
    assert spool.read(2) == [b"a", b"b"]
    assert spool.read(2) == [b"a", b"b"]  # not committed: Kafka did not take them
    spool.commit(2)
    spool.append([b"d"])
    assert spool.read(10) == [b"c"]
    spool.commit(1)
    assert spool.read(10) == [b"d"]


def test_a_spool_directory_has_one_owner_at_a_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path, file_bytes=100, max_files=2)
    with pytest.raises(RuntimeError, match="in use by another publisher"):
        Spool(tmp_path, file_bytes=100, max_files=2)
    spool.append([b"x"])
    spool.close()
    assert Spool(tmp_path, file_bytes=100, max_files=2).pending() == 1


def test_the_handler_leaves_out_the_publishers_own_loggers() -> None:
    from kestrel_client import KestrelHandler

    pub = FakePublisher()
    handler = KestrelHandler(pub, service="app")  # type: ignore[arg-type]
    for name in ("kestrel_client", "aiokafka.producer", "app.db"):
        handler.handle(logging.LogRecord(name, logging.ERROR, "f.py", 1, "x", (), None))
    assert [r["context"]["logger"] for r in pub.records] == ["app.db"]


def test_records_in_memory_reach_the_spool_at_interpreter_exit(tmp_path: Path) -> None:
    """A process that exits without closing its publisher, Kafka unreachable: nothing lost."""
    import subprocess
    import sys

    from engine.devtools.broker import free_port

    script = f"""
import kestrel_client as kc
kc.configure("127.0.0.1:{free_port()}", service="app", spool_dir={str(tmp_path)!r},
             retry_seconds=60, linger_seconds=5)
log = kc.get_logger()
for i in range(50):
    log.info("bye", n=i)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spool = Spool(tmp_path, file_bytes=1 << 20, max_files=8)
    got = [orjson.loads(line)["context"]["n"] for line in spool.read(1000)]
    print(f"spooled at exit: {len(got)}")
    assert got == list(range(50))


def test_a_timed_decorator_may_be_applied_before_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    from kestrel_client import logger as module
    from kestrel_client import timed

    @timed("warmup", model="m")
    def work() -> str:
        return "done"

    pub = FakePublisher()
    monkeypatch.setattr(module, "_DEFAULT", {"publisher": pub, "service": "svc"})
    assert work() == "done"
    (rec,) = pub.records
    assert rec["service"] == "svc" and rec["performance_data"]["operation"] == "warmup"
    assert rec["context"] == {"model": "m"}
