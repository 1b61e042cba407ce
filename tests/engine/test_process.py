"""engine.runtime.process: the worker's event loop bounds the closing handshake of TLS, and the
garbage collector is settled after start-up.

Closing a TLS connection waits for the peer's ``close_notify``; uvloop waits 30 s by default,
which stalled a worker on a SASL_SSL broker (see ``_Loop``). A peer that never answers shows the
bound: the close ends after about ``TLS_SHUTDOWN_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from engine.devtools.certificates import CertificateFiles, make_certificates
from engine.runtime.process import (
    GC_THRESHOLDS,
    TLS_SHUTDOWN_TIMEOUT_SECONDS,
    _LoopPolicy,
    settle_gc,
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def mute_tls_server(certs: CertificateFiles) -> Iterator[int]:
    """A TLS server that completes the handshake, then never reads or answers again."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert, certs.key)
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            tls = context.wrap_socket(conn, server_side=True)
            held.append(tls)  # kept open, silent

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


def test_closing_tls_to_a_silent_peer_takes_the_short_timeout(
    certs: CertificateFiles, mute_tls_server: int
) -> None:
    loop = _LoopPolicy().new_event_loop()
    client = ssl.create_default_context(cafile=certs.ca_cert)

    async def connect_and_close() -> float:
        closed = loop.create_future()

        class Protocol(asyncio.Protocol):
            def connection_lost(self, exc: Exception | None) -> None:
                closed.set_result(None)

        transport, _ = await loop.create_connection(
            Protocol, "127.0.0.1", mute_tls_server, ssl=client
        )
        started = time.monotonic()
        transport.close()
        await asyncio.wait_for(closed, 20)  # uvloop's own default would take 30 s
        return time.monotonic() - started

    try:
        took = loop.run_until_complete(connect_and_close())
    finally:
        loop.close()
    print(f"TLS close to a silent peer took {took:.2f}s (bound {TLS_SHUTDOWN_TIMEOUT_SECONDS}s)")
    assert took >= TLS_SHUTDOWN_TIMEOUT_SECONDS * 0.9  # it did wait for the peer, up to the bound


def test_the_worker_loop_is_made_for_every_thread() -> None:
    # Faust runs its consumer in a thread with a loop of its own, from asyncio.new_event_loop().
    policy = _LoopPolicy()
    loops = [policy.new_event_loop() for _ in range(2)]
    try:
        assert {type(loop).__name__ for loop in loops} == {"_Loop"}
        assert loops[0] is not loops[1]
    finally:
        for loop in loops:
            loop.close()


def test_settle_gc_freezes_what_start_up_built_and_collects_less_often() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    try:
        settle_gc()
        assert gc.get_freeze_count() > 1_000  # at least the modules' objects
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > before[0]
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle made after the freeze is still collected
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
