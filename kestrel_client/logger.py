"""Logging into Kestrel: a :class:`logging.Handler`, a structured logger, session and user
context, and a timing helper that emits ``performance_data``.

Context (``session_id``, ``user_id``, any other fields) is held in a :mod:`contextvars`
variable, so it follows each request through threads' and asyncio tasks' own contexts:

>>> with bind(session_id="s1", user_id="u1"):
...     current_context()
{'session_id': 's1', 'user_id': 'u1'}
>>> current_context()
{}

A record from the standard :mod:`logging` module becomes a Kestrel log event with
:func:`record_from_logging` (pure; the handler adds the publishing):

>>> import logging
>>> rec = logging.LogRecord("app.db", logging.WARNING, "f.py", 1, "slow %s", ("query",), None)
>>> rec.session_id = "s9"
>>> event = record_from_logging(rec, "api")
>>> event["level"], event["service"], event["message"], event["session_id"], event["context"]
('WARNING', 'api', 'slow query', 's9', {'logger': 'app.db'})
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import time
import traceback
import types
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from kestrel_client.publisher import Publisher
from kestrel_client.records import log_record

__all__ = [
    "KestrelHandler",
    "StructuredLogger",
    "bind",
    "configure",
    "current_context",
    "get_logger",
    "record_from_logging",
    "timed",
]

P = ParamSpec("P")
R = TypeVar("R")

_EMPTY: Mapping[str, Any] = types.MappingProxyType({})
_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "kestrel_context", default=_EMPTY
)
#: Fields of a LogRecord that are not the caller's ``extra``.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)
_TOP = ("type", "session_id", "user_id", "performance_data")
#: Loggers of the publishing machinery itself, never published (no feedback loop).
_OWN_LOGGERS = ("kestrel_client", "aiokafka")


def current_context() -> dict[str, Any]:
    """The fields bound in this context (see :func:`bind`)."""
    return dict(_CONTEXT.get())


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add fields (``session_id``, ``user_id``, ...) to every event logged inside the block."""
    token = _CONTEXT.set({**_CONTEXT.get(), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _split(fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(top-level schema fields, the rest for ``context``)."""
    top = {k: fields[k] for k in _TOP if fields.get(k) is not None}
    rest = {k: v for k, v in fields.items() if k not in _TOP}
    return top, rest


def record_from_logging(record: logging.LogRecord, service: str | None = None) -> dict[str, Any]:
    """A Kestrel log event from a :class:`logging.LogRecord`.

    The service is ``service``, else the logger's name. ``extra`` fields named ``type``,
    ``session_id``, ``user_id`` or ``performance_data`` become the schema's fields; other
    ``extra`` fields, the bound context (:func:`bind`), the logger's name and an exception's
    traceback go into ``context``.
    """
    extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
    top, rest = _split({**_CONTEXT.get(), **extra})
    context: dict[str, Any] = {"logger": record.name, **rest}
    if record.exc_info and record.exc_info[0] is not None:
        context["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
    return log_record(
        record.created,
        record.levelno,
        service or record.name,
        record.getMessage(),
        context=context,
        **top,
    )


class KestrelHandler(logging.Handler):
    """A :mod:`logging` handler that publishes each record to Kestrel's logs topic.

    ``emit`` only queues the record (see :class:`~kestrel_client.publisher.Publisher`): a
    logging call never waits for Kafka, up or down. Records of the publisher's own loggers
    (``kestrel_client``, ``aiokafka``) are left out, so that a handler on the root logger does
    not publish the publisher's complaints about Kafka being down.

    Parameters
    ----------
    publisher
        Where records go; or give ``bootstrap`` (and ``topic``, publisher options) and the
        handler makes its own, which it closes on :meth:`close`.
    service
        The ``service`` of every record (default: the logger's name).
    level
        The handler's threshold, as for any handler.
    flush_timeout_seconds
        How long :meth:`flush` (called by :func:`logging.shutdown`) waits for Kafka.
    """

    def __init__(
        self,
        publisher: Publisher | None = None,
        *,
        bootstrap: str | None = None,
        topic: str = "logs",
        service: str | None = None,
        level: int = logging.NOTSET,
        flush_timeout_seconds: float = 5.0,
        **publisher_options: Any,
    ) -> None:
        super().__init__(level)
        self._owned = publisher is None
        if publisher is None:
            if bootstrap is None:
                raise ValueError("KestrelHandler: give a publisher or bootstrap")
            publisher = Publisher(bootstrap, topic, **publisher_options)
        self.publisher = publisher
        self.service = service
        self.flush_timeout_seconds = flush_timeout_seconds

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record (never raises: a failure goes to :meth:`handleError`)."""
        if record.name.startswith(_OWN_LOGGERS):
            return
        try:
            self.publisher.publish(record_from_logging(record, self.service))
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Wait (at most ``flush_timeout_seconds``) for what was logged to reach Kafka, or the
        spool while Kafka is unreachable."""
        self.publisher.flush(self.flush_timeout_seconds, while_down=False)

    def close(self) -> None:
        """Close the publisher if the handler made it (unsent records stay in the spool)."""
        try:
            if self._owned:
                self.publisher.close(self.flush_timeout_seconds)
        finally:
            super().close()


class StructuredLogger:
    """Logs events in Kestrel's schema for one service, with keyword fields.

    ``log.info("answer sent", type="llm_request", session_id="s1", model="m")``: ``type``,
    ``session_id``, ``user_id`` and ``performance_data`` are the schema's fields, any other
    keyword goes into ``context``; fields bound with :func:`bind` are added (keywords win).

    Parameters
    ----------
    service
        The ``service`` of every event.
    publisher
        Where events go.
    clock
        Epoch seconds now (injected for tests).
    """

    def __init__(
        self, service: str, publisher: Publisher, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.service = service
        self.publisher = publisher
        self._clock = clock

    def log(self, level: str | int, message: str, **fields: Any) -> None:
        """Publish one event at ``level`` (a name or a :mod:`logging` number)."""
        top, context = _split({**_CONTEXT.get(), **fields})
        rec = log_record(self._clock(), level, self.service, message, context=context, **top)
        self.publisher.publish(rec)

    def debug(self, message: str, **fields: Any) -> None:
        """Publish at DEBUG."""
        self.log("DEBUG", message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        """Publish at INFO."""
        self.log("INFO", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        """Publish at WARNING."""
        self.log("WARNING", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        """Publish at ERROR."""
        self.log("ERROR", message, **fields)

    def critical(self, message: str, **fields: Any) -> None:
        """Publish at CRITICAL."""
        self.log("CRITICAL", message, **fields)

    def timed(self, operation: str, **fields: Any) -> Timed:
        """A :class:`Timed` block or decorator reporting to this logger."""
        return Timed(self, operation, fields)


class Timed:
    """Times a block or a function and logs one event with ``performance_data``.

    The event: level INFO (ERROR if the block raised, with the error in ``context``), message
    ``"<operation> took <ms> ms"``, ``type`` ``performance`` unless given, and
    ``performance_data = {"operation": operation, "duration_ms": ms}``; Kestrel makes the
    series ``log.latency_ms{service,operation}`` of it. Made by :func:`timed` or
    :meth:`StructuredLogger.timed`.
    """

    def __init__(
        self, logger: StructuredLogger | None, operation: str, fields: Mapping[str, Any]
    ) -> None:
        self.logger = logger
        self.operation = operation
        self.fields = dict(fields)
        self._started = 0.0
        #: The last measured duration, milliseconds.
        self.duration_ms: float | None = None

    def __enter__(self) -> Timed:
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ms = (time.perf_counter() - self._started) * 1000.0
        self.duration_ms = ms
        fields = {"type": "performance", **self.fields}
        level = "INFO"
        if exc is not None:
            level = "ERROR"
            fields["error"] = f"{type(exc).__name__}: {exc}"
        fields["performance_data"] = {"operation": self.operation, "duration_ms": round(ms, 3)}
        logger = self.logger or get_logger()  # (resolved late: a decorator runs at import)
        logger.log(level, f"{self.operation} took {ms:.1f} ms", **fields)

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Time every call of ``func`` (a plain function or a coroutine function)."""
        import inspect

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
                with Timed(self.logger, self.operation, self.fields):
                    return await func(*args, **kwargs)

            return timed_coroutine  # type: ignore[return-value]

        @functools.wraps(func)
        def timed_call(*args: P.args, **kwargs: P.kwargs) -> R:
            with Timed(self.logger, self.operation, self.fields):
                return func(*args, **kwargs)

        return timed_call


_DEFAULT: dict[str, Any] = {}


def configure(bootstrap: str, service: str, topic: str = "logs", **options: Any) -> Publisher:
    """Make the process's default publisher and service (for :func:`get_logger`, :func:`timed`).

    Call it once at start; close the returned publisher at exit (``atexit.register(p.close)``).
    """
    publisher = Publisher(bootstrap, topic, **options)
    _DEFAULT.update(publisher=publisher, service=service)
    return publisher


def get_logger(service: str | None = None, publisher: Publisher | None = None) -> StructuredLogger:
    """A :class:`StructuredLogger` for ``service`` on ``publisher``.

    Both default to those of :func:`configure`.
    """
    publisher = publisher or _DEFAULT.get("publisher")
    service = service or _DEFAULT.get("service")
    if publisher is None or not service:
        raise RuntimeError("kestrel_client: call configure(bootstrap, service) first")
    return StructuredLogger(service, publisher)


def timed(operation: str, *, logger: StructuredLogger | None = None, **fields: Any) -> Timed:
    """Time a block (``with timed("llm_call", model=m):``) or a function (``@timed("db")``).

    Other keywords go into the event's ``context`` (``type`` and ``session_id`` to their
    fields). ``logger`` defaults to :func:`get_logger`'s, looked up when the block ends (so a
    decorator may run before :func:`configure`).
    """
    return Timed(logger, operation, fields)
