"""Kestrel's one config file (TOML): typed sections, validation, secrets from the environment.

The file is found from ``--config FILE`` or ``KESTREL_CONFIG``; without either, defaults apply.
Every problem is reported as ``<file>: <key.path>: <what is wrong>`` and all problems are reported
at once (:class:`ConfigError`). Unknown keys are errors.

Strings may reference environment variables as ``${NAME}``. Values of secret keys (``url``,
``secret``, ``routing_key``, ``token``, ``sasl_password``, ``ssl_key_password``) are held as
:class:`pydantic.SecretStr` and never printed; an error about such a key shows ``<redacted>``
instead of the value.

``[kafka]`` says how to reach the brokers securely (``security_protocol``, SASL, TLS); its keys
are checked together (:meth:`KafkaSettings.security_problems`), e.g. a SASL protocol needs a
mechanism, a user name and a password.

Each ``[[channels]]`` entry is validated by the settings model its ``type`` names (see
:mod:`alert_channels.registry`), so it accepts only that channel type's keys.

Detector parameters live in ``[detectors.<kind>]`` tables and are validated by the detector's own
parameter model (see :mod:`detectors.registry`); ``[[overrides]]`` change them for series whose id
(``name{label=value,...}``) or name matches a glob.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tempfile
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from alert_channels.registry import CHANNEL_TYPES, ChannelSettings
from alert_channels.templates import TemplateText
from detectors.base import DetectorParams, Input
from detectors.registry import DETECTORS, kinds_for, params_for
from engine.formats.base import InputSpec
from engine.model.alert import RESERVED_LABELS, Severity
from engine.model.durations import seconds_or_duration
from engine.model.events import LOG, METRIC, Kind
from engine.notify.settings import InhibitRuleSettings, RoutingSettings, SilenceSettings

__all__ = [
    "AlertSettings",
    "ColdStoreSettings",
    "Config",
    "ConfigError",
    "DetectorChoice",
    "InputSettings",
    "KafkaSettings",
    "MetricsSettings",
    "Override",
    "RedisSettings",
    "SeriesSettings",
    "TopicSettings",
    "WindowSettings",
    "WorkerSettings",
    "load_config",
    "parse_config",
    "redact_url",
    "repartition_topics",
]

CONFIG_ENV = "KESTREL_CONFIG"
SECRET_KEYS = frozenset(
    {"url", "secret", "routing_key", "token", "sasl_password", "ssl_key_password"}
)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

DEFAULT_HOT_TYPES = (
    "thought",
    "stream_delta",
    "tool_progress",
    "websocket_message",
    "user_interaction",
    "llm_request",
    "executor_heartbeat",
)

#: Log event types kept in the cold store by default (low-frequency, worth auditing).
DEFAULT_COLD_TYPES = (
    "task_created",
    "task_completed",
    "task_failed",
    "tool_executed",
    "llm_completion",
    "user_approval",
    "error_occurred",
    "security_event",
    "cost_tracking",
    "performance_metric",
)


class ConfigError(Exception):
    """A config file that cannot be used; ``problems`` holds one line per error."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _label_name(name: str) -> str:
    if not _LABEL_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a label name")
    if name in RESERVED_LABELS:
        raise ValueError(f"{name!r} is set by Kestrel itself (use the override's severity)")
    return name


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _durations(cls, value: Any, info: ValidationInfo) -> Any:
        """Every ``*_seconds`` key also takes Go-style text ("5m", "1h30m", "500ms")."""
        name = info.field_name or ""
        return seconds_or_duration(value) if name.endswith("_seconds") else value


#: How a Kafka client talks to the brokers (Kafka's ``security.protocol``).
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
#: The SASL mechanisms Kestrel's clients support (Kafka's ``sasl.mechanism``).
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(_Section):
    """How to reach Kafka and how the worker behaves as a consumer.

    The security keys apply to every Kafka client Kestrel makes: the worker's (through Faust),
    and those of ``kestrel produce`` and ``kestrel dlq replay``.
    """

    broker: str = Field(
        "kafka://127.0.0.1:9092", description="Faust broker URL(s), kafka://host:port;..."
    )
    app_id: str = Field("kestrel", min_length=1, description="Consumer group and table prefix.")
    partitions: int = Field(4, ge=1, description="Partitions of the topics Kestrel creates.")
    replication_factor: int = Field(1, ge=1)
    session_timeout_seconds: float = Field(10.0, gt=0, le=300)
    fetch_max_wait_seconds: float = Field(
        0.05, gt=0, le=10, description="Longest a fetch waits for data: bounds added latency."
    )
    idempotent_producer: bool = Field(
        False,
        description="Make the worker's producer idempotent (acks=all): a retried send is not "
        "written twice. Apache Kafka supports it; the embedded Tansu broker does not.",
    )
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT",
        description="PLAINTEXT, SSL (TLS), SASL_PLAINTEXT (SASL without TLS: the password of "
        "PLAIN crosses the network in clear) or SASL_SSL (SASL over TLS).",
    )
    sasl_mechanism: SaslMechanism | None = Field(
        None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; required with SASL_*."
    )
    sasl_username: str | None = Field(None, description="The SASL user; required with SASL_*.")
    sasl_password: SecretStr | None = Field(
        None,
        description="The SASL password; required with SASL_*. From the environment: "
        'sasl_password = "${KAFKA_PASSWORD}".',
    )
    ssl_cafile: str | None = Field(
        None,
        description="PEM file of the authorities that sign the brokers' certificates (SSL and "
        "SASL_SSL); without it, the system's trusted authorities.",
    )
    ssl_certfile: str | None = Field(
        None,
        description="PEM file of the client's certificate chain, for brokers that require "
        "client certificates (mutual TLS); may hold the private key too.",
    )
    ssl_keyfile: str | None = Field(
        None, description="PEM file of the client certificate's private key."
    )
    ssl_key_password: SecretStr | None = Field(
        None, description="Password of an encrypted ssl_keyfile."
    )
    ssl_check_hostname: bool = Field(
        True,
        description="Check that a broker's certificate names the host connected to; turning "
        "it off still checks the certificate's signature.",
    )

    @property
    def uses_sasl(self) -> bool:
        """Whether the clients authenticate with SASL (``SASL_PLAINTEXT`` or ``SASL_SSL``)."""
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        """Whether the connections are encrypted (``SSL`` or ``SASL_SSL``)."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    def security_problems(self) -> list[str]:
        """What is wrong with the security keys taken together, as ``key: problem`` lines.

        Files are checked to exist. Nothing here shows a password.

        >>> KafkaSettings(security_protocol="SASL_SSL", sasl_username="kestrel").security_problems()
        ['sasl_mechanism: required with security_protocol = "SASL_SSL" (PLAIN, SCRAM-SHA-256 or \
SCRAM-SHA-512)', 'sasl_password: required with security_protocol = "SASL_SSL"']
        >>> KafkaSettings(sasl_username="kestrel").security_problems()
        ['sasl_username: set, but security_protocol = "PLAINTEXT" uses no SASL (use SASL_PLAINTEXT \
or SASL_SSL)']
        """
        problems: list[str] = []
        protocol = f'security_protocol = "{self.security_protocol}"'
        sasl = {
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_username": self.sasl_username,
            "sasl_password": self.sasl_password,
        }
        for key, value in sasl.items():
            given = value is not None and (
                (value.get_secret_value() if isinstance(value, SecretStr) else value) != ""
            )
            if self.uses_sasl and not given:
                hint = " (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)" if key == "sasl_mechanism" else ""
                empty = value is not None  # e.g. an environment variable set to ""
                problems.append(f"{key}: {'empty' if empty else 'required'} with {protocol}{hint}")
            elif not self.uses_sasl and value is not None:
                problems.append(
                    f"{key}: set, but {protocol} uses no SASL (use SASL_PLAINTEXT or SASL_SSL)"
                )
        files = {
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
        }
        for key, path in files.items():
            if path is None:
                continue
            if not self.uses_tls:
                problems.append(f"{key}: set, but {protocol} uses no TLS (use SSL or SASL_SSL)")
            elif not os.path.isfile(path):
                problems.append(f"{key}: no such file: {path}")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            problems.append("ssl_keyfile: needs ssl_certfile (the certificate it is the key of)")
        if self.ssl_key_password is not None and self.ssl_certfile is None:
            problems.append("ssl_key_password: set, but there is no ssl_certfile")
        return problems

    @property
    def bootstrap_servers(self) -> str:
        """The broker list for plain Kafka clients: ``kafka://a:9092;kafka://b:9092`` to
        ``a:9092,b:9092``.

        >>> KafkaSettings(broker="kafka://127.0.0.1:9092").bootstrap_servers
        '127.0.0.1:9092'
        """
        hosts = (part.strip() for part in self.broker.replace(",", ";").split(";"))
        return ",".join(h.split("://", 1)[-1] for h in hosts if h)


class TopicSettings(_Section):
    """Topic names."""

    logs: str = Field("logs", min_length=1)
    metrics: str = Field("metrics", min_length=1)
    alerts: str = Field(
        "kestrel.alerts",
        min_length=1,
        description="Alert transitions, the durable record. Created with one partition, so one "
        "worker (failing over like any partition) routes, groups and sends notifications.",
    )
    dlq: str = Field("kestrel.dlq", min_length=1, description="Rejected inputs.")
    alerts_dlq: str = Field(
        "kestrel.alerts.dlq", min_length=1, description="Notifications given up on."
    )
    silences: str = Field(
        "kestrel.silences", min_length=1, description="Silences made through the HTTP API."
    )


class RedisSettings(_Section):
    """The hot-event mirror (Redis Streams).

    ``url`` is ``redis://[[user]:password@]host:port/db``, or ``rediss://...`` for TLS (the
    ``ssl_*`` keys then say which authority to trust and, for mutual TLS, which client
    certificate to show). A password in the URL must be percent-encoded; the URL is a secret:
    logs and errors show it through :attr:`shown_url`, without the password.
    """

    enabled: bool = True
    url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="redis://, rediss:// (TLS) or unix://; with a password from the "
        'environment: url = "rediss://:${REDIS_PASSWORD}@redis.internal:6380/0".',
    )
    ssl_cafile: str | None = Field(
        None,
        description="With rediss://: PEM file of the authorities that sign the server's "
        "certificate; without it, the system's trusted authorities.",
    )
    ssl_certfile: str | None = Field(
        None, description="With rediss://: PEM file of a client certificate (mutual TLS)."
    )
    ssl_keyfile: str | None = Field(
        None, description="With rediss://: PEM file of the client certificate's private key."
    )
    ssl_check_hostname: bool = Field(
        True, description="With rediss://: check that the certificate names the host."
    )
    key_prefix: str = Field("kestrel:", description="Prefix of every key Kestrel writes.")
    hot_types: tuple[str, ...] = DEFAULT_HOT_TYPES
    retention_seconds: float = Field(
        86400.0, gt=0, description="Stream entries older than this are trimmed."
    )
    timeout_seconds: float = Field(0.5, gt=0, description="Socket timeout of each Redis call.")
    retry_after_seconds: float = Field(
        2.0, ge=0, description="After a failure, writes are skipped (and counted) for this long."
    )

    @property
    def uses_tls(self) -> bool:
        """Whether the URL asks for TLS (``rediss://``)."""
        return self.url.get_secret_value().startswith("rediss://")

    @property
    def shown_url(self) -> str:
        """The URL as logs and errors may show it: the password (and any ``password`` query
        argument) replaced by ``<redacted>``.

        >>> RedisSettings(url="rediss://:hunter2@redis:6380/0").shown_url
        'rediss://:<redacted>@redis:6380/0'
        >>> RedisSettings(url="redis://app:hunter2@redis/0?password=x&db=0").shown_url
        'redis://app:<redacted>@redis/0?password=<redacted>&db=0'
        """
        return redact_url(self.url.get_secret_value())

    def security_problems(self) -> list[str]:
        """What is wrong with the URL and TLS keys taken together, as ``key: problem`` lines.

        >>> RedisSettings(url="http://redis:6379", ssl_cafile="ca.pem").security_problems()
        ['url: must start with redis://, rediss:// or unix://', \
'ssl_cafile: set, but the url is not rediss:// (TLS)']
        """
        problems: list[str] = []
        scheme, sep, _ = self.url.get_secret_value().partition("://")
        if not sep or scheme not in ("redis", "rediss", "unix"):
            problems.append("url: must start with redis://, rediss:// or unix://")
        files = {
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
        }
        for key, path in files.items():
            if path is None:
                continue
            if not self.uses_tls:
                problems.append(f"{key}: set, but the url is not rediss:// (TLS)")
            elif not os.path.isfile(path):
                problems.append(f"{key}: no such file: {path}")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            problems.append("ssl_keyfile: needs ssl_certfile (the certificate it is the key of)")
        return problems


_REDACTED = "<redacted>"


def redact_url(url: str) -> str:
    """``url`` without its secrets: the password of its user part and the values of query
    arguments whose name holds ``password``, ``secret`` or ``token`` become ``<redacted>``.

    >>> redact_url("redis://:p@ss@host:6379/0")
    'redis://:<redacted>@host:6379/0'
    >>> redact_url("rediss://host:6380?token=abc")
    'rediss://host:6380?token=<redacted>'
    >>> redact_url("redis://host:6379/0")
    'redis://host:6379/0'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    location, qmark, query = rest.partition("?")
    netloc, slash, path = location.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{_REDACTED}@{host}" if colon else f"{_REDACTED}@{host}"
    if qmark:
        args = []
        for arg in query.split("&"):
            name, eq, _value = arg.partition("=")
            secret = any(word in name.lower() for word in ("password", "secret", "token"))
            args.append(f"{name}={_REDACTED}" if eq and secret else arg)
        query = "&".join(args)
    return f"{scheme}{sep}{netloc}{slash}{path}{qmark}{query}"


class WorkerSettings(_Section):
    """Batching, checkpointing, input limits and the HTTP endpoint."""

    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)
    batch_max_messages: int = Field(
        50_000,
        ge=1,
        description="Most records the worker takes from its consumer at once (Kafka's "
        "max.poll.records); each partition's share is judged in one call. It bounds how long "
        "one turn of the consume loop runs (about 4 us a record). aiokafka sends a broker no "
        "fetch while records fetched from it wait: keep it above what one fetch brings "
        "(1 MiB a partition), or the worker idles a round trip after each drained fetch.",
    )
    batch_within_seconds: float = Field(
        0.05,
        gt=0,
        description="Ignored: kept so that older config files load. A batch is what one fetch "
        "returns, and kafka.fetch_max_wait_seconds bounds how long a fetch waits.",
    )
    checkpoint_interval_seconds: float = Field(
        5.0, gt=0, description="How often changed series state is written to the changelog."
    )
    commit_interval_seconds: float = Field(
        2.8,
        gt=0,
        le=300,
        description="How often consumed offsets are committed (Faust's broker_commit_interval). "
        "Each commit first writes the series states changed since the last checkpoint, so a "
        "crash replays at most this much consumption. Longer: less checkpoint work when many "
        "series change between commits (each changed series is written once per commit; "
        "checkpoint_interval_seconds writes them on its own timer too: raise both).",
    )
    max_message_bytes: int = Field(1_048_576, ge=1, description="Larger messages go to the DLQ.")
    max_future_seconds: float = Field(
        3600.0,
        gt=0,
        description="Events stamped further than this after their message's Kafka time go to "
        "the DLQ (a far-future timestamp would make the series' later events look late).",
    )
    max_series: int = Field(
        1_000_000,
        ge=1,
        description="Series kept in memory per worker; the least recent are evicted.",
    )
    max_tracked_series: int = Field(
        1_000_000,
        ge=1,
        description="Most series a worker tracks at all, in memory and evicted to the changelog "
        "table together. Events of new series beyond it are counted "
        "(kestrel_series_untracked_total), logged once a minute, raise the kestrel.series_limit "
        "alert and are not judged; series already tracked still are. Memory: about 5 kB per "
        "series with the adaptive detector (bench/cardinality.py).",
    )
    shutdown_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="On SIGTERM/SIGINT the worker saves what it can (states, the notifier's "
        "state, pending records) and stops; if that takes longer (e.g. the broker is gone) it "
        "exits anyway after this long, with status 1.",
    )
    data_dir: str = Field(
        os.path.join(tempfile.gettempdir(), "kestrel"),
        min_length=1,
        description="Faust's local data directory (the state itself is in the changelog topic), "
        "and the default place of the cold store's SQLite file.",
    )


class ColdStoreSettings(_Section):
    """The cold store: cold log events and alert history kept in a database (see
    :mod:`engine.sinks.cold_store`), written by a consumer group of its own.

    ``url`` is ``postgresql://user[:password]@host:port/db`` or ``sqlite:///path/file.db``;
    without one, a SQLite file ``cold-store.db`` in ``[worker] data_dir``. The URL is a secret:
    logs and errors show it without the password (:attr:`shown_url`).
    """

    enabled: bool = Field(
        True,
        description="Run the cold-store consumer in every worker (its own consumer group, "
        "<app_id>-cold-store).",
    )
    url: SecretStr | None = Field(
        None,
        description="postgresql://... or sqlite:///path; default: sqlite in worker.data_dir.",
    )
    types: tuple[str, ...] = Field(
        DEFAULT_COLD_TYPES, description="Log event types stored (the event's type field)."
    )
    alerts: bool = Field(True, description="Store every alert transition (alert history).")
    retention_days: int = Field(
        0,
        ge=0,
        description="Drop stored rows older than this many days (PostgreSQL: whole monthly "
        "partitions, once all their rows are older); 0 keeps them for ever.",
    )
    batch_max_records: int = Field(
        5000, ge=1, description="Most Kafka records written to the database in one transaction."
    )
    fetch_max_wait_seconds: float = Field(
        0.5, gt=0, description="Longest a fetch waits for records before writing what it has."
    )
    retry_seconds: float = Field(
        2.0,
        gt=0,
        description="While the database is unreachable, consumption pauses and the write is "
        "tried again after this long (for ever: nothing is skipped).",
    )
    migrate_on_start: bool = Field(
        True,
        description="Apply missing schema migrations when the store starts (each in one "
        "transaction; on a large PostgreSQL store one may rebuild an index for a while: run "
        "`kestrel db migrate` first to choose when); else run `kestrel db migrate`.",
    )
    writers: int = Field(
        2,
        ge=1,
        le=16,
        description="Batches the cold store writes to PostgreSQL at once, each over a "
        "connection of its own and in its own transaction; a batch's offsets are committed once "
        "it and every earlier batch are durable (the server's work per row is most of the cost: "
        "two writers use two server processes). SQLite: one writer whatever this says.",
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: SecretStr | None) -> SecretStr | None:
        if url is None:
            return None
        text = url.get_secret_value()
        if not text.startswith(("postgresql://", "postgres://", "sqlite:///")):
            raise ValueError("must start with postgresql://, postgres:// or sqlite:///")
        return url

    def resolved_url(self, data_dir: str) -> str:
        """The database URL: :attr:`url`, else the SQLite file in ``data_dir``.

        >>> ColdStoreSettings().resolved_url("/var/lib/kestrel")
        'sqlite:////var/lib/kestrel/cold-store.db'
        """
        if self.url is not None:
            return self.url.get_secret_value()
        return "sqlite:///" + os.path.join(data_dir, "cold-store.db")


class WindowSettings(_Section):
    """Tumbling event-time windows over logs."""

    size_seconds: float = Field(60.0, gt=0)
    allowed_lateness_seconds: float = Field(30.0, ge=0)
    idle_advance_seconds: float = Field(
        10.0,
        gt=0,
        description="With no new events for this long (wall clock), event time is advanced by the "
        "wall-clock time elapsed, so the last windows close.",
    )


class AlertSettings(_Section):
    """Alert lifecycle."""

    severity: Severity = Severity.WARNING
    repeat_interval_seconds: float = Field(
        3600.0, gt=0, description="A firing alert is re-sent after this much event time."
    )
    trace_link_template: str | None = Field(
        None,
        description='A link to a trace, with {trace_id}, e.g. "https://jaeger/trace/{trace_id}" '
        "or Tempo's explore URL: alerts on a service's series carry one (trace_url).",
    )
    trace_examples: int = Field(
        3, ge=0, le=20, description="Example trace ids an alert on a service's series carries."
    )
    summary_template: TemplateText | None = Field(
        None,
        description="Jinja text of each alert's summary line, run sandboxed (see "
        "alert_channels.templates); checked when the config is loaded.",
    )

    @field_validator("trace_link_template")
    @classmethod
    def _has_trace_id(cls, value: str | None) -> str | None:
        if value is not None and "{trace_id}" not in value:
            raise ValueError("must contain {trace_id}")
        return value


class SeriesSettings(_Section):
    """Which detectors run on which kind of series."""

    metric_detectors: tuple[str, ...] = ("adaptive",)
    latency_detectors: tuple[str, ...] = ("zscore",)
    event_count_detectors: tuple[str, ...] = ("zscore",)
    error_detectors: tuple[str, ...] = ("error_spike",)
    pattern_detectors: tuple[str, ...] = Field(
        ("new_pattern",),
        description="Detectors of each service's log messages (new templates, rate jumps); "
        "empty to turn off.",
    )
    # Behaviour, security and cost series (see engine/core/behaviour.py).
    per_type: bool = Field(
        False, description="A `log.type_events{service,type}` count per window for each type."
    )
    per_tool: bool = Field(
        False,
        description="`tool.failure_ratio` and `tool.latency_ms{service,tool}` per window "
        "(tool from context.tool or context.tool_name).",
    )
    per_model: bool = Field(
        False,
        description="`llm.latency_ms`, `llm.tokens` and `llm.cost_usd{service,model}` per "
        "window (model from context.model).",
    )
    per_user_types: tuple[str, ...] = Field(
        (),
        description="Event types whose per-user rate, failures, tokens and cost are watched "
        '(e.g. ["cost_tracking", "security_event", "tool_executed", "user_approval"]).',
    )
    per_session_types: tuple[str, ...] = Field(
        (), description="Event types whose per-session rate is watched (e.g. tool_executed)."
    )
    max_tracked_users: int = Field(
        10_000,
        ge=16,
        le=1_000_000,
        description="Users (or sessions) tracked exactly per watched type, measure and Kafka "
        "partition: the heavy hitters; the rest count only in the population's aggregate.",
    )
    user_history_factor: float = Field(
        10.0, gt=1, description="A user's window must exceed its own mean this many times..."
    )
    user_population_factor: float = Field(
        10.0, gt=1, description="...and the population's mean per active user this many times."
    )
    user_min_events: float = Field(
        20.0, gt=0, description="Least events (or failures) in a window that can alert."
    )
    user_min_cost_usd: float = Field(
        5.0, gt=0, description="Least spend in a window (USD) that can alert."
    )


class Override(_Section):
    """Settings for the series whose id or name matches ``match`` (a glob)."""

    match: str = Field(min_length=1)
    severity: Severity | None = None
    detectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    use: tuple[str, ...] | None = Field(
        None, description="Replace the detector list for these series."
    )
    labels: dict[Annotated[str, AfterValidator(_label_name)], str] = Field(
        default_factory=dict,
        description="Labels added to these series' alerts (e.g. team), which routes match on and "
        "notifications show; a series label of the same name wins.",
    )
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations added to these series' alerts (e.g. runbook_url, dashboard), "
        "shown in notifications and usable in templates.",
    )

    def matches(self, name: str, sid: str) -> bool:
        """Whether this override applies to series ``name`` / full id ``sid``."""
        return fnmatch.fnmatchcase(name, self.match) or fnmatch.fnmatchcase(sid, self.match)


def repartition_topics(app_id: str) -> dict[Kind, str]:
    """The internal topics of re-keyed events, by kind (see :mod:`engine.core.repartition`).

    >>> repartition_topics("kestrel")
    {'log': 'kestrel-repartition-logs', 'metric': 'kestrel-repartition-metrics'}
    """
    return {LOG: f"{app_id}-repartition-logs", METRIC: f"{app_id}-repartition-metrics"}


class InputSettings(_Section):
    """One ``[[inputs]]`` entry: an input topic and the format that reads it.

    ``options`` are the format's own settings (e.g. the field mapping of ``json``, the signal
    of ``otlp_proto``), checked by the format (see :mod:`engine.formats`).
    """

    topic: str = Field(min_length=1)
    format: str = Field("kestrel_json", description="See engine.formats.FORMATS.")
    kind: Literal["log", "metric"] | None = Field(
        None, description="For kestrel_json: what the topic carries."
    )
    options: dict[str, Any] = Field(default_factory=dict)
    repartition: bool = Field(
        False,
        description="Re-key the decoded events by series through an internal topic, so that a "
        "series meets its baseline on one worker (for shippers that do not key by series).",
    )

    def spec(self) -> InputSpec:
        """The :class:`~engine.formats.base.InputSpec` the decoders are built from."""
        return InputSpec(self.topic, self.format, self.kind, self.options)


class MetricsSettings(_Section):
    """Kestrel's anomaly view as Prometheus gauges, for the series chosen here (TOML ``[metrics]``).

    Each exported series gets its last value, and per detector its expected value, band and
    anomaly score, at ``/metrics`` (``kestrel_series_*``, labelled by series id). A series id is a
    label here only because the set is bounded: the globs choose the series and
    ``export_max_series`` caps how many one worker exports (the first ones seen win).
    """

    export_series: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        (),
        description="Globs on series names or ids (as in [[overrides]] match); empty exports none.",
    )
    export_max_series: int = Field(
        1000, ge=1, le=100_000, description="Most series one worker exports."
    )

    def exports(self, name: str, sid: str) -> bool:
        """Whether series ``name`` (full id ``sid``) is chosen for export.

        >>> MetricsSettings(export_series=("cpu*",)).exports("cpu_load", "cpu_load{host=a}")
        True
        """
        return any(
            fnmatch.fnmatchcase(name, g) or fnmatch.fnmatchcase(sid, g) for g in self.export_series
        )


class ApiSettings(_Section):
    """The worker's HTTP API (``/silences``)."""

    token: SecretStr | None = Field(
        None,
        description="Bearer token the silences API requires (from the environment, e.g. "
        'token = "${KESTREL_API_TOKEN}"); without one the API answers 403.',
    )


@dataclass(frozen=True, slots=True)
class DetectorChoice:
    """A detector to run on a series, with its resolved parameters."""

    kind: str
    params: DetectorParams


class Config(_Section):
    """The whole validated configuration."""

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    redis: RedisSettings = RedisSettings()
    worker: WorkerSettings = WorkerSettings()
    windows: WindowSettings = WindowSettings()
    alerts: AlertSettings = AlertSettings()
    series: SeriesSettings = SeriesSettings()
    detectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    overrides: tuple[Override, ...] = ()
    channels: tuple[ChannelSettings, ...] = ()
    routing: RoutingSettings = RoutingSettings()
    silences: tuple[SilenceSettings, ...] = ()
    inhibit_rules: tuple[InhibitRuleSettings, ...] = ()
    api: ApiSettings = ApiSettings()
    input_topics: tuple[InputSettings, ...] = Field(
        (),
        alias="inputs",
        description="[[inputs]]: more input topics, each with its format; [topics] logs and "
        "metrics stay inputs (kestrel_json) unless an entry names the same topic.",
    )
    metrics: MetricsSettings = MetricsSettings()
    cold_store: ColdStoreSettings = ColdStoreSettings()
    _source: str = PrivateAttr("<defaults>")

    @property
    def source(self) -> str:
        """The file this configuration was read from (``<defaults>`` without one)."""
        return self._source

    def inputs(self) -> tuple[InputSpec, ...]:
        """The input topics and the format that reads each.

        >>> [(i.topic, i.format, i.kind) for i in Config().inputs()]
        [('logs', 'kestrel_json', 'log'), ('metrics', 'kestrel_json', 'metric')]
        """
        t = self.topics
        listed = [i.spec() for i in self.input_topics]
        named = {spec.topic for spec in listed}
        implicit = (
            InputSpec(t.logs, "kestrel_json", LOG),
            InputSpec(t.metrics, "kestrel_json", METRIC),
        )
        internal: tuple[InputSpec, ...] = ()
        if self.repartition_sources():
            topics = repartition_topics(self.kafka.app_id)
            internal = tuple(InputSpec(topics[k], "kestrel_json", k) for k in (LOG, METRIC))
        return (*(spec for spec in implicit if spec.topic not in named), *listed, *internal)

    def repartition_sources(self) -> frozenset[str]:
        """The input topics whose events are re-keyed by series (``repartition = true``); their
        events reach the pipeline through the internal topics ``<app_id>-repartition-logs`` and
        ``-metrics`` (see :mod:`engine.core.repartition`)."""
        return frozenset(i.topic for i in self.input_topics if i.repartition)

    def input_problems(self) -> list[str]:
        """What is wrong with the ``[[inputs]]`` entries (unknown format, bad options, a topic
        listed twice), one line per problem with its key path."""
        return _input_problems(self)

    @property
    def cold_store_url(self) -> str:
        """The cold store's database URL (a secret: show it with :func:`redact_url`)."""
        return self.cold_store.resolved_url(self.worker.data_dir)

    @property
    def notify_state_topic(self) -> str:
        """The topic holding the notifier's state snapshots (``<app_id>-notify-state``)."""
        return f"{self.kafka.app_id}-notify-state"

    def detector_kinds(self) -> list[str]:
        """Every detector kind some series may run (a bounded metric label set)."""
        s = self.series
        kinds = {
            *s.metric_detectors,
            *s.latency_detectors,
            *s.event_count_detectors,
            *s.error_detectors,
            *s.pattern_detectors,
        }
        for ov in self.overrides:
            kinds.update(ov.use or ())
        return sorted(kinds)

    def detector_params(self, kind: str) -> DetectorParams:
        """The configured (or default) parameters of detector ``kind``."""
        return _base_params(self, kind)

    def plan(self, role: str, name: str, sid: str) -> tuple[tuple[DetectorChoice, ...], Severity]:
        """Detectors and severity for a series.

        ``role`` is one of ``metric``, ``latency``, ``event_count``, ``error``, ``pattern``;
        ``name`` is the series name and ``sid`` its full id. Later matching overrides win over
        earlier ones.
        """
        return _plan(self, role, name, sid)


def _plan(
    cfg: Config, role: str, name: str, sid: str
) -> tuple[tuple[DetectorChoice, ...], Severity]:
    kinds: tuple[str, ...] = getattr(cfg.series, f"{role}_detectors")
    severity = cfg.alerts.severity
    patches: dict[str, dict[str, Any]] = {}
    for ov in cfg.overrides:
        if not ov.matches(name, sid):
            continue
        if ov.use is not None and role != "pattern":  # `use` lists detectors of numbers
            kinds = ov.use
        if ov.severity is not None:
            severity = ov.severity
        for kind, table in ov.detectors.items():
            patches[kind] = deep_merge(patches.get(kind, {}), table)
    choices = tuple(
        DetectorChoice(kind, _params_with(cfg, kind, patches.get(kind, {}))) for kind in kinds
    )
    return choices, severity


def _input_problems(cfg: Config) -> list[str]:
    from engine.formats import build_decoder  # (the formats package imports pydantic models)

    problems: list[str] = []
    seen: set[str] = set()
    for i, entry in enumerate(cfg.input_topics):
        if entry.topic in seen:
            problems.append(f"inputs[{i}].topic: {entry.topic!r} is listed twice")
        seen.add(entry.topic)
        try:
            build_decoder(entry.spec())
        except ValueError as exc:
            problems.append(f"inputs[{i}]: {str(exc).removeprefix('format: ')}")
    return problems


def _base_params(cfg: Config, kind: str) -> DetectorParams:
    return _params_with(cfg, kind, {})


@lru_cache(maxsize=4096)
def _cached_params(kind: str, table_json: str) -> DetectorParams:
    return params_for(kind, orjson.loads(table_json))


def _params_with(cfg: Config, kind: str, patch: Mapping[str, Any]) -> DetectorParams:
    merged = deep_merge(cfg.detectors.get(kind, {}), patch)
    return _cached_params(kind, orjson.dumps(merged, option=orjson.OPT_SORT_KEYS).decode())


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` applied; nested tables are merged key by key.

    >>> deep_merge({"a": 1, "t": {"x": 1, "y": 2}}, {"t": {"y": 3}})
    {'a': 1, 't': {'x': 1, 'y': 3}}
    """
    out = dict(base)
    for key, value in patch.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Read and validate the config file at ``path`` (or ``$KESTREL_CONFIG``, or defaults).

    Raises
    ------
    ConfigError
        With one line per problem, each naming the file and the key path.
    """
    environ = os.environ if env is None else env
    if path is None:
        path = environ.get(CONFIG_ENV) or None
    if path is None:
        return parse_config({}, "<defaults>", environ)
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(source, [f"cannot read: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(source, ["not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    return parse_config(data, source, environ)


def parse_config(
    data: Mapping[str, Any], source: str, env: Mapping[str, str] | None = None
) -> Config:
    """Validate an already-parsed TOML document (see :func:`load_config`)."""
    environ = os.environ if env is None else env
    problems: list[str] = []
    expanded = _expand_env(data, (), environ, problems)
    cfg: Config | None = None
    # A key whose variable is missing is reported once, not again for its (empty) value.
    unset = {p.split(": ", 1)[0] for p in problems}
    try:
        cfg = Config.model_validate(expanded)
    except ValidationError as exc:
        for problem in _format_errors(exc.errors(include_url=False), ()):
            if problem.split(": ", 1)[0] not in unset:
                problems.append(problem)
    # On the raw document, so that these are reported along with every other problem.
    problems.extend(_check_detectors(expanded))
    problems.extend(
        p for p in _security_problems(cfg, expanded) if p.split(": ", 1)[0] not in unset
    )
    if cfg is not None:
        problems.extend(cfg.routing.channel_problems([c.name for c in cfg.channels]))
        problems.extend(cfg.input_problems())
    if problems or cfg is None:
        raise ConfigError(source, problems)
    cfg._source = source
    return cfg


def _security_problems(cfg: Config | None, data: Mapping[str, Any]) -> list[str]:
    """The problems of the ``[kafka]`` and ``[redis]`` security keys taken together.

    Checked once each key of the section is valid on its own, even when other sections are not
    (so that every problem is reported at once).
    """
    problems: list[str] = []
    sections: tuple[tuple[str, type[KafkaSettings] | type[RedisSettings]], ...] = (
        ("kafka", KafkaSettings),
        ("redis", RedisSettings),
    )
    for name, model in sections:
        settings: KafkaSettings | RedisSettings
        if cfg is not None:
            settings = getattr(cfg, name)
        else:
            try:
                settings = model.model_validate(data.get(name, {}))
            except ValidationError:
                continue  # reported by the model
        problems.extend(f"{name}.{p}" for p in settings.security_problems())
    return problems


def _expand_env(
    value: Any, path: tuple[str | int, ...], env: Mapping[str, str], problems: list[str]
) -> Any:
    """Replace ``${NAME}`` in every string; a missing variable is a problem naming the key."""
    if isinstance(value, str):
        if "${" not in value:
            return value

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                problems.append(f"{_dotted(path)}: environment variable {name} is not set")
                return ""
            return env[name]

        return _ENV_REF.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: _expand_env(v, (*path, k), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*path, i), env, problems) for i, v in enumerate(value)]
    return value


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _number(value: Any) -> str:
    """A bound as written in a config file: ``0`` rather than ``0.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "model_attributes_type": "Input should be a valid dictionary",  # a channel that is no table
}


def _format_errors(errors: Sequence[ErrorDetails], prefix: tuple[str | int, ...]) -> list[str]:
    out = []
    for err in errors:
        loc = tuple(p for p in (*prefix, *err["loc"]) if not (isinstance(p, str) and "[" in p))
        loc = _without_channel_tag(loc)
        problem = _channel_type_problem(err, loc)
        if problem is not None:
            out.append(problem)
            continue
        secret = any(isinstance(p, str) and p in SECRET_KEYS for p in loc)
        template = _MESSAGES.get(err["type"])
        ctx = err.get("ctx") or {}
        msg = template.format(**{k: _number(v) for k, v in ctx.items()}) if template else err["msg"]
        if err["type"] == "value_error":
            # Our own validators phrase their messages as "<key>: <problem>".
            msg = str(ctx.get("error", msg))
            key, sep, rest = msg.partition(": ")
            if sep and " " not in key:
                loc, msg = (*loc, key), rest
                secret = secret or key in SECRET_KEYS
        if err["type"] not in ("extra_forbidden", "missing") and "input" in err:
            shown = "<redacted>" if secret else repr(err["input"])
            if err["type"] != "value_error":
                msg = f"{msg}, got {shown}"
        out.append(f"{_dotted(loc)}: {msg}")
    return out


def _is_channel(loc: tuple[str | int, ...]) -> bool:
    return len(loc) >= 2 and loc[0] == "channels" and isinstance(loc[1], int)


def _without_channel_tag(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The path without the channel type pydantic puts in it: ``channels[0].webhook.url`` is
    ``channels[0].url``."""
    if _is_channel(loc) and len(loc) > 2 and loc[2] in CHANNEL_TYPES:
        return (*loc[:2], *loc[3:])
    return loc


def _channel_type_problem(err: ErrorDetails, loc: tuple[str | int, ...]) -> str | None:
    """The problem of a channel whose ``type`` is missing or names no channel type, else None."""
    if not _is_channel(loc):
        return None
    key = _dotted((*loc, "type"))
    if err["type"] == "union_tag_not_found":
        return f"{key}: required key is missing"
    if err["type"] == "union_tag_invalid":
        entry = err.get("input")
        tag = entry.get("type") if isinstance(entry, Mapping) else (err.get("ctx") or {}).get("tag")
        names = ", ".join(sorted(CHANNEL_TYPES))
        return f"{key}: unknown channel type {tag!r} (known: {names})"
    return None


_ROLES = ("metric", "latency", "event_count", "error")
#: Detectors the roles above may use (the ``pattern`` role takes message detectors).
_NUMERIC = kinds_for(Input.VALUES, Input.WINDOWS)


def _check_detectors(data: Mapping[str, Any]) -> list[str]:
    """Detector kinds and parameters, and channel names, checked on the raw document.

    Values of the wrong type are skipped here: the model reports them.
    """
    problems: list[str] = []

    def unknown(path: tuple[str | int, ...], kind: Any, known: Collection[str] = _NUMERIC) -> bool:
        if isinstance(kind, str) and kind not in known:
            names = ", ".join(sorted(known))
            problems.append(f"{_dotted(path)}: unknown detector {kind!r} (known: {names})")
            return True
        return False

    def table_of(value: Any) -> Mapping[str, Any] | None:
        return value if isinstance(value, Mapping) else None

    base = table_of(data.get("detectors")) or {}
    for kind, table in base.items():
        path: tuple[str | int, ...] = ("detectors", kind)
        if unknown(path, kind, DETECTORS) or table_of(table) is None:
            continue
        try:
            params_for(kind, table)
        except ValidationError as exc:
            problems.extend(_format_errors(exc.errors(include_url=False), path))
    series = table_of(data.get("series")) or {}
    for role in _ROLES:
        kinds = series.get(f"{role}_detectors")
        for i, kind in enumerate(kinds if isinstance(kinds, list) else ()):
            unknown(("series", f"{role}_detectors", i), kind)
    kinds = series.get("pattern_detectors")
    for i, kind in enumerate(kinds if isinstance(kinds, list) else ()):
        unknown(("series", "pattern_detectors", i), kind, kinds_for(Input.MESSAGES))
    overrides = data.get("overrides")
    for n, override in enumerate(overrides if isinstance(overrides, list) else ()):
        ov = table_of(override) or {}
        for kind, table in (table_of(ov.get("detectors")) or {}).items():
            path = ("overrides", n, "detectors", kind)
            patch = table_of(table)
            if unknown(path, kind, DETECTORS) or patch is None:
                continue
            try:
                params_for(kind, deep_merge(table_of(base.get(kind)) or {}, patch))
            except ValidationError as exc:
                # Problems of keys the override does not set are reported under [detectors].
                errors = [
                    e for e in exc.errors(include_url=False) if not e["loc"] or e["loc"][0] in patch
                ]
                problems.extend(_format_errors(errors, path))
        use = ov.get("use")
        for i, kind in enumerate(use if isinstance(use, list) else ()):
            unknown(("overrides", n, "use", i), kind)
    channels = data.get("channels")
    seen: set[str] = set()
    for i, channel in enumerate(channels if isinstance(channels, list) else ()):
        name = (table_of(channel) or {}).get("name")
        if isinstance(name, str):
            if name in seen:
                problems.append(f"channels[{i}].name: duplicate channel name {name!r}")
            seen.add(name)
    return problems
