"""Apache Kafka (KRaft) on loopback from Maven Central's jars: one node, or a three-node cluster.

The tests run against it, and ``kestrel broker --engine apache`` runs one node in the foreground.

**The jars.** :data:`POM` (``apache_kafka_pom.xml``, the one place the version is pinned) names
the server and its log binding; :func:`fetch` has Maven copy them and everything they need from
Maven Central into ``~/.cache/kestrel/kafka-<version>/lib`` (or ``$KESTREL_KAFKA_HOME/lib``),
once: the cache is complete when ``lib/.complete`` holds the digest of the POM it was fetched
for. ``make kafka`` (part of ``make test``'s set-up) runs ``python -m
engine.devtools.apache_kafka fetch``. Java 17 or newer and Maven come from the machine.

**A node** is a combined broker and controller (``process.roles=broker,controller``): storage
formatted by ``kafka.tools.StorageTool`` in its own directory under a generated cluster id, then
``java -cp '<cache>/lib/*' kafka.Kafka server.properties`` with a small heap, listening on free
loopback ports (clients and controllers), logging to ``<node dir>/server.log``.
:meth:`ApacheKafka.start` returns once every node answers a metadata request listing every
broker. Consumer groups join at once (``group.initial.rebalance.delay.ms=0``).

**Three nodes** (``ApacheKafka(nodes=3)``) form one controller quorum; the topics they create
default to replication factor 3 and ``min.insync.replicas=2``, so one node may be stopped
(:meth:`ApacheKafka.stop_node`) and started again (:meth:`ApacheKafka.start_node`) while clients
carry on.

**A secured listener** (``ApacheKafka(sasl_ssl=SaslSslListener(...))``): each node also listens
with SASL over TLS (listener ``SECURE``) on a port of its own, with the certificate of a PEM
keystore (``ssl.keystore.type=PEM``, e.g. from
:func:`engine.devtools.certificates.make_certificates`) and the SASL mechanisms PLAIN,
SCRAM-SHA-256 and SCRAM-SHA-512. Each user gets a PLAIN login (in the listener's JAAS config) and
SCRAM credentials of both kinds, written into the metadata when the storage is formatted
(``StorageTool format --add-scram``), so they exist from the first start. The PLAINTEXT
listener stays (the nodes talk to each other and are checked on it):
:attr:`ApacheKafka.secure_bootstrap` is the address that asks for credentials.

A missing Java, Maven or cache raises :class:`BrokerError` saying how to get it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from engine.devtools.broker import BrokerError, free_port, wait_for_port

__all__ = [
    "POM",
    "ApacheKafka",
    "KafkaNode",
    "SaslSslListener",
    "fetch",
    "is_fetched",
    "java_binary",
    "kafka_home",
    "kafka_version",
]

#: The Maven project naming Kafka's jars; its ``kafka.version`` property is the version.
POM = Path(__file__).with_name("apache_kafka_pom.xml")
#: Marks a complete cache; holds the SHA-256 of the POM the jars were fetched for.
COMPLETE = ".complete"
#: Kafka 4 needs Java 17 or newer.
JAVA_MIN = 17
HOST = "127.0.0.1"
HOW_TO_FETCH = "run `make kafka` (or `python -m engine.devtools.apache_kafka fetch`)"

#: Kafka's log: to the standard output, which the launcher sends to the node's log file.
_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = out
"""


def kafka_version() -> str:
    """The Kafka version pinned in :data:`POM`."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(POM).getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not node.text:
        raise BrokerError(f"{POM}: no <kafka.version> property")
    return node.text.strip()


def kafka_home() -> Path:
    """Where the jars are cached: ``$KESTREL_KAFKA_HOME``, else ``~/.cache/kestrel/kafka-<v>``."""
    env = os.environ.get("KESTREL_KAFKA_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "kestrel" / f"kafka-{kafka_version()}"


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def is_fetched(home: Path | None = None) -> bool:
    """Whether ``home/lib`` holds the jars of the current :data:`POM`."""
    marker = (home or kafka_home()) / "lib" / COMPLETE
    try:
        return marker.read_text().strip() == _pom_digest()
    except OSError:
        return False


def fetch(home: Path | None = None, *, say: bool = True) -> Path:
    """Fill ``home/lib`` with Kafka's jars through Maven unless it is complete; returns it."""
    home = home or kafka_home()
    lib = home / "lib"
    if is_fetched(home):
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) fetches Apache Kafka's jars from Maven Central and is not installed: "
            "apt-get install -y maven (Java 17 or newer too: openjdk-17-jre-headless)"
        )
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be fetching the same cache
        if is_fetched(home):
            return lib
        if say:
            print(
                f"kestrel: fetching Apache Kafka {kafka_version()} from Maven Central into {lib}",
                file=sys.stderr,
                flush=True,
            )
        partial = Path(tempfile.mkdtemp(prefix="lib.partial-", dir=home))
        try:
            result = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(POM),
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={partial}",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise BrokerError(
                    f"Maven could not fetch Apache Kafka's jars (exit {result.returncode}):\n"
                    + (result.stdout + result.stderr)[-3000:]
                )
            (partial / COMPLETE).write_text(_pom_digest() + "\n")
            partial.chmod(0o755)  # mkdtemp made it private
            if lib.exists():
                shutil.rmtree(lib)  # fetched for another POM
            partial.rename(lib)
        finally:
            if partial.exists():
                shutil.rmtree(partial)
    return lib


def java_binary() -> str:
    """The ``java`` to run Kafka with (``$JAVA_HOME/bin/java``, else the one on ``PATH``)."""
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "java" if home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if java is None:
        raise BrokerError(
            f"Apache Kafka needs Java {JAVA_MIN} or newer and no `java` was found: "
            "apt-get install -y openjdk-17-jre-headless (or set JAVA_HOME)"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is not None:
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8.0_392" is Java 8
            major = int(match.group(2))
        if major < JAVA_MIN:
            raise BrokerError(
                f"Apache Kafka needs Java {JAVA_MIN} or newer; {java} is Java {major}: "
                "apt-get install -y openjdk-17-jre-headless (or set JAVA_HOME)"
            )
    return java


def _cluster_id() -> str:
    """A random cluster id as ``kafka-storage random-uuid`` prints it (URL-safe base64)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):  # Kafka avoids ids that look like options, too
            return text


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


#: The SASL mechanisms a :class:`SaslSslListener` accepts.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: The name of the secured listener in ``server.properties``.
SECURE_LISTENER = "SECURE"
_USER_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class SaslSslListener:
    """A SASL_SSL listener on every node (see the module docstring).

    ``keystore`` is a PEM file holding the server's private key (PKCS#8, unencrypted) and its
    certificate chain; ``users`` maps each user name to its password (letters, digits and
    ``_.-`` only: they are written into Kafka's JAAS and ``--add-scram`` syntax unquoted).
    """

    keystore: Path
    users: Mapping[str, str]

    def __post_init__(self) -> None:
        for name, password in self.users.items():
            for what, text in (("user name", name), ("password", password)):
                if not _USER_NAME.fullmatch(text):
                    raise BrokerError(f"a test {what} must match {_USER_NAME.pattern}")

    def server_properties(self) -> dict[str, str]:
        """The listener's entries of ``server.properties`` (its port is set per node)."""
        prefix = f"listener.name.{SECURE_LISTENER.lower()}"
        plain_users = " ".join(f'user_{u}="{p}"' for u, p in self.users.items())
        props = {
            "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
            f"{prefix}.ssl.keystore.type": "PEM",
            f"{prefix}.ssl.keystore.location": str(self.keystore),
            f"{prefix}.plain.sasl.jaas.config": (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
            ),
        }
        for mechanism in SASL_MECHANISMS[1:]:
            props[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
        return props

    def format_arguments(self) -> list[str]:
        """``StorageTool format`` arguments that add every user's SCRAM credentials."""
        args = []
        for mechanism in SASL_MECHANISMS[1:]:
            for name, password in self.users.items():
                args += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
        return args


@dataclass
class KafkaNode:
    """One combined broker + controller of an :class:`ApacheKafka` cluster."""

    node_id: int
    port: int
    controller_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    #: The port of the SASL_SSL listener (0: the cluster has none).
    secure_port: int = 0

    @property
    def log_path(self) -> Path:
        """The node's log (Kafka's log4j output and the JVM's)."""
        return self.directory / "server.log"

    @property
    def properties_path(self) -> Path:
        return self.directory / "server.properties"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class ApacheKafka:
    """A KRaft cluster of ``nodes`` combined broker + controller nodes on ``127.0.0.1``.

    ``port`` is the first node's client port (0: a free one); ``directory`` holds each node's
    storage, config and log (a temporary directory, removed by :meth:`stop`, when ``None``).
    ``config`` adds or overrides ``server.properties`` entries of every node; ``sasl_ssl`` adds a
    secured listener to each node.
    """

    nodes: int = 1
    port: int = 0
    directory: Path | None = None
    heap_mb: int = 512
    home: Path | None = None
    config: Mapping[str, str] = field(default_factory=dict)
    sasl_ssl: SaslSslListener | None = None
    cluster_id: str = field(default_factory=_cluster_id)
    #: The nodes, once started (node ids 1, 2, ...).
    members: list[KafkaNode] = field(default_factory=list, init=False)
    _java: str = field(default="", init=False, repr=False)
    _own_directory: bool = field(default=False, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        """``host:port,...`` of every node, for Kafka clients."""
        return ",".join(f"{HOST}:{n.port}" for n in self.members)

    @property
    def url(self) -> str:
        """The Faust broker URL(s): ``kafka://host:port;...``."""
        return ";".join(f"kafka://{HOST}:{n.port}" for n in self.members)

    @property
    def secure_bootstrap(self) -> str:
        """``host:port,...`` of every node's SASL_SSL listener (needs ``sasl_ssl``)."""
        if self.sasl_ssl is None:
            raise BrokerError("this cluster has no SASL_SSL listener")
        return ",".join(f"{HOST}:{n.secure_port}" for n in self.members)

    @property
    def secure_url(self) -> str:
        """The Faust broker URL(s) of the SASL_SSL listeners: ``kafka://host:port;...``."""
        return ";".join(f"kafka://{h}" for h in self.secure_bootstrap.split(","))

    @property
    def version(self) -> str:
        return kafka_version()

    def node(self, node_id: int) -> KafkaNode:
        """The node with id ``node_id`` (ids start at 1)."""
        return next(n for n in self.members if n.node_id == node_id)

    # -- configuration ---------------------------------------------------------------------

    def server_properties(self, node: KafkaNode) -> dict[str, str]:
        """The ``server.properties`` of ``node``."""
        replicas = min(self.nodes, 3)
        min_isr = 2 if replicas >= 3 else 1
        voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in self.members)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{HOST}:{node.port},CONTROLLER://{HOST}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{node.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(node.directory / "data"),
            "num.partitions": "1",
            "default.replication.factor": str(replicas),
            "min.insync.replicas": str(min_isr),
            "offsets.topic.replication.factor": str(replicas),
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": str(replicas),
            "transaction.state.log.min.isr": str(min_isr),
            "share.coordinator.state.topic.replication.factor": str(replicas),
            "share.coordinator.state.topic.min.isr": str(min_isr),
            # A consumer group's first join completes at once (the default waits 3 s for more
            # members), so workers and tests do not wait for it.
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            # A stopped node's registration lapses after the session timeout (9 s by default),
            # and until then the controller refuses the node's next start
            # (DUPLICATE_BROKER_REGISTRATION); a killed node is noticed as late.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "3000",
            # Small threads and buffers: a test broker on a shared machine.
            "num.network.threads": "2",
            "num.io.threads": "4",
            "background.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        }
        if self.sasl_ssl is not None:
            secure = f"{SECURE_LISTENER}://{HOST}:{node.secure_port}"
            props["listeners"] += f",{secure}"
            props["advertised.listeners"] += f",{secure}"
            props["listener.security.protocol.map"] += f",{SECURE_LISTENER}:SASL_SSL"
            props.update(self.sasl_ssl.server_properties())
        props.update(self.config)
        return props

    def _jvm(self, lib: Path, log4j: Path) -> list[str]:
        return [
            self._java,
            f"-Xmx{self.heap_mb}m",
            f"-Xms{min(self.heap_mb, 128)}m",
            "-XX:+UseSerialGC",  # one GC thread: a small heap on a shared machine
            # C1 only: a node was ready in 4 s instead of 6 s here, with 40% less CPU.
            "-XX:TieredStopAtLevel=1",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:-UsePerfData",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            str(lib / "*"),
        ]

    def _lib(self) -> Path:
        home = self.home or kafka_home()
        if not is_fetched(home):
            raise BrokerError(
                f"Apache Kafka {kafka_version()}'s jars are not in {home / 'lib'}: {HOW_TO_FETCH}; "
                "Maven fetches them from Maven Central"
            )
        return home / "lib"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> ApacheKafka:
        """Format and start every node; return once each answers a metadata request."""
        if self.members:
            raise BrokerError("this cluster was started already")
        lib = self._lib()
        self._java = java_binary()
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="kestrel-kafka-"))
            self._own_directory = True
        self.directory.mkdir(parents=True, exist_ok=True)
        for log_name, level in (("log4j2.properties", "INFO"), ("tools-log4j2.properties", "WARN")):
            (self.directory / log_name).write_text(_LOG4J2.format(level=level))
        for i in range(1, self.nodes + 1):
            port = self.port if i == 1 and self.port else free_port()
            directory = self.directory / f"node-{i}"
            directory.mkdir(parents=True, exist_ok=True)
            secure_port = free_port() if self.sasl_ssl is not None else 0
            self.members.append(KafkaNode(i, port, free_port(), directory, None, secure_port))
        try:
            self._format(lib)
            for node in self.members:
                self._launch(node, lib)
            self._wait_ready({n.node_id for n in self.members}, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _format(self, lib: Path) -> None:
        """Format every node's storage (in parallel: each is a JVM start)."""
        assert self.directory is not None
        log4j = self.directory / "tools-log4j2.properties"
        procs = []
        for node in self.members:
            props = "".join(f"{k}={v}\n" for k, v in self.server_properties(node).items())
            node.properties_path.write_text(props)
            command = [
                *self._jvm(lib, log4j),
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                self.cluster_id,
                "--config",
                str(node.properties_path),
                *(self.sasl_ssl.format_arguments() if self.sasl_ssl is not None else ()),
            ]
            out = (node.directory / "format.log").open("wb")
            procs.append((node, subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)))
            out.close()
        for node, proc in procs:
            try:
                code = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code = -1
            if code != 0:
                raise BrokerError(
                    f"formatting node {node.node_id}'s storage failed (exit {code}):\n"
                    + _tail(node.directory / "format.log")
                )

    def _launch(self, node: KafkaNode, lib: Path) -> None:
        assert self.directory is not None
        command = [
            *self._jvm(lib, self.directory / "log4j2.properties"),
            "kafka.Kafka",
            str(node.properties_path),
        ]
        with node.log_path.open("ab") as out:
            node.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=node.directory
            )

    def _wait_ready(self, node_ids: set[int], timeout: float) -> None:
        """Wait until the running nodes accept connections and metadata lists ``node_ids``."""
        deadline = time.monotonic() + timeout
        for node in self.members:
            if node.node_id in node_ids:
                while not wait_for_port(HOST, node.port, 0.5):
                    self._check_alive(node)
                    if time.monotonic() > deadline:
                        raise BrokerError(self._not_ready(node, timeout, "did not listen"))
        seen: set[int] = set()
        while True:
            for node in self.members:
                if node.node_id in node_ids:
                    self._check_alive(node)
            live = ",".join(f"{HOST}:{n.port}" for n in self.members if n.running)
            seen = _alive_brokers(live, timeout=max(1.0, min(10.0, deadline - time.monotonic())))
            if node_ids <= seen:
                return
            if time.monotonic() > deadline:
                node = self.node(min(node_ids - seen))
                raise BrokerError(
                    self._not_ready(node, timeout, f"is not in the metadata (brokers: {seen})")
                )
            time.sleep(0.2)

    def _check_alive(self, node: KafkaNode) -> None:
        if node.process is not None and node.process.poll() is not None:
            raise BrokerError(
                f"Apache Kafka node {node.node_id} exited with {node.process.returncode}; "
                f"{node.log_path}:\n{_tail(node.log_path)}"
            )

    def _not_ready(self, node: KafkaNode, timeout: float, what: str) -> str:
        return (
            f"Apache Kafka node {node.node_id} (port {node.port}) {what} within {timeout:.0f}s; "
            f"{node.log_path}:\n{_tail(node.log_path)}"
        )

    def stop_node(self, node_id: int, *, kill: bool = False, timeout: float = 30.0) -> None:
        """Stop one node: a clean shutdown (SIGTERM), or ``kill`` (SIGKILL, a crash)."""
        node = self.node(node_id)
        _stop([node], signal.SIGKILL if kill else signal.SIGTERM, timeout)

    def start_node(self, node_id: int, timeout: float = 60.0) -> None:
        """Start a stopped node again (same ports, same storage) and wait until it is back."""
        node = self.node(node_id)
        if node.running:
            raise BrokerError(f"node {node_id} is running")
        self._launch(node, self._lib())
        self._wait_ready({node_id}, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every node (all at once, so no node waits for a quorum that is leaving)."""
        _stop(self.members, signal.SIGTERM, timeout)
        if self._own_directory and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
            self._own_directory = False
        self.members = []

    @contextlib.contextmanager
    def running(self) -> Iterator[ApacheKafka]:
        """Run the cluster for the duration of a ``with`` block."""
        self.start()
        try:
            yield self
        finally:
            self.stop()


def _stop(nodes: list[KafkaNode], sig: int, timeout: float) -> None:
    """Signal every running node, wait up to ``timeout`` seconds, then kill what is left."""
    running = [n for n in nodes if n.process is not None and n.process.poll() is None]
    for node in running:
        assert node.process is not None
        node.process.send_signal(sig)
    deadline = time.monotonic() + timeout
    for node in running:
        assert node.process is not None
        try:
            node.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait()
    for node in nodes:
        node.process = None


def _alive_brokers(bootstrap: str, timeout: float) -> set[int]:
    """The ids of the brokers a metadata request lists (empty when none answers)."""
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    async def ask() -> set[int]:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
        try:
            await client.bootstrap()
            metadata = await client.fetch_all_metadata()
            return {b.nodeId for b in metadata.brokers()}
        except (TimeoutError, KafkaError, OSError):
            return set()
        finally:
            await client.close()

    # In a thread of its own: the caller may be inside a running event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(ask())).result()


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.devtools.apache_kafka fetch|home``: fill or locate the jar cache."""
    args = sys.argv[1:] if argv is None else argv
    try:
        if args == ["fetch"]:
            lib = fetch()
            print(f"Apache Kafka {kafka_version()}: {lib}")
            return 0
        if args == ["home"]:
            print(kafka_home())
            return 0
    except BrokerError as exc:
        print(f"kestrel: {exc}", file=sys.stderr)
        return 1
    print("usage: python -m engine.devtools.apache_kafka fetch|home", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
