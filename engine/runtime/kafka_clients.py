"""The one place that turns ``[kafka]`` into the settings of Kafka clients, security included.

Every Kafka client Kestrel makes gets its connection settings here, so that a secured broker
(TLS, SASL PLAIN or SCRAM) is reached the same way by all of them:

- Faust's consumer, producer and topic creation: :func:`faust_credentials` becomes the app's
  ``broker_credentials`` (Faust's aiokafka driver turns it into the same client settings);
- Kestrel's own aiokafka clients (the topic views, ``kestrel dlq replay``, ``kestrel produce``):
  ``AIOKafkaConsumer(**client_options(kafka), ...)``.

:func:`check_access` connects once before a worker starts, so that wrong credentials or an
untrusted certificate stop it at once with one clear line (:class:`KafkaAccessError`) instead of
Faust's traceback of "Unable to bootstrap"; :func:`start_client` starts a command's client and,
if that fails, says why the same way. No message here shows a password: :func:`describe` names
the protocol, the mechanism and the user only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT

from engine.config import KafkaSettings

__all__ = [
    "KafkaAccessError",
    "check_access",
    "client_options",
    "describe",
    "faust_credentials",
    "ssl_context",
    "start_client",
]

#: Errors that mean the broker refused the credentials (retrying cannot help).
_REFUSED = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
)


class KafkaAccessError(Exception):
    """Kestrel could not use Kafka: a broker refused the credentials, TLS with it failed, or
    (for a command's client) no broker could be reached. The message says which.

    The message names the broker, the protocol, the mechanism and the user, never a password.
    """


def describe(kafka: KafkaSettings) -> str:
    """The security settings in words, for messages (no password).

    >>> describe(KafkaSettings())
    'PLAINTEXT'
    >>> describe(KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
    ...                        sasl_username="kestrel", sasl_password="hunter2"))
    "SASL_SSL, SCRAM-SHA-512 as user 'kestrel'"
    """
    if not kafka.uses_sasl:
        return kafka.security_protocol
    return f"{kafka.security_protocol}, {kafka.sasl_mechanism} as user {kafka.sasl_username!r}"


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of ``SSL`` and ``SASL_SSL`` (``None`` for the others).

    It trusts ``ssl_cafile`` (else the system's authorities), shows the client certificate of
    ``ssl_certfile``/``ssl_keyfile`` if set, and checks host names unless
    ``ssl_check_hostname`` is false (the certificate is verified either way).

    Raises
    ------
    ValueError
        When a file cannot be read or holds no usable certificate or key; the message names
        the key and the file.
    """
    if not kafka.uses_tls:
        return None
    key = "ssl_cafile"
    try:
        context = ssl.create_default_context(cafile=kafka.ssl_cafile)
        if kafka.ssl_certfile is not None:
            key = "ssl_certfile"
            password = kafka.ssl_key_password
            context.load_cert_chain(
                kafka.ssl_certfile,
                kafka.ssl_keyfile,
                password=None if password is None else password.get_secret_value(),
            )
    except (OSError, ssl.SSLError) as exc:  # SSLError is an OSError; named for the reader
        path = kafka.ssl_cafile if key == "ssl_cafile" else kafka.ssl_certfile
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise ValueError(f"kafka.{key}: cannot load {path}: {reason}") from None
    context.check_hostname = kafka.ssl_check_hostname
    return context


def client_options(kafka: KafkaSettings, *, bootstrap: str | None = None) -> dict[str, Any]:
    """Keyword arguments for an aiokafka client (``AIOKafkaProducer``, ``AIOKafkaConsumer``,
    ``AIOKafkaAdminClient``, ``AIOKafkaClient``): the brokers and the security settings.

    ``bootstrap`` (``host:port,...``) replaces the configured brokers.

    >>> client_options(KafkaSettings(broker="kafka://k1:9092;kafka://k2:9092"))
    {'bootstrap_servers': 'k1:9092,k2:9092', 'security_protocol': 'PLAINTEXT'}
    >>> opts = client_options(KafkaSettings(security_protocol="SASL_PLAINTEXT",
    ...     sasl_mechanism="SCRAM-SHA-256", sasl_username="kestrel", sasl_password="hunter2"))
    >>> sorted(opts)  # doctest: +NORMALIZE_WHITESPACE
    ['bootstrap_servers', 'sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username',
     'security_protocol']
    """
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap or kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
    }
    context = ssl_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    if kafka.uses_sasl:
        assert kafka.sasl_password is not None  # the config's security_problems() checked it
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return options


def faust_credentials(kafka: KafkaSettings) -> CredentialsT | None:
    """The Faust app's ``broker_credentials`` (``None`` for PLAINTEXT).

    Faust's aiokafka driver gives them to its consumer, its producer and the client that
    creates topics; a ``SASLCredentials`` with a TLS context means ``SASL_SSL``.
    """
    context = ssl_context(kafka)
    if kafka.uses_sasl:
        assert kafka.sasl_password is not None
        return SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value(),
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return SSLCredentials(context)
    return None


async def check_access(kafka: KafkaSettings, *, timeout: float = 15.0) -> bool:
    """Connect to the configured brokers, one after another, until one accepts Kestrel.

    For each broker: a TCP connection (none: the next broker), then for ``SSL`` and
    ``SASL_SSL`` a TLS handshake, then a Kafka connection as the clients make it (ApiVersions,
    then SASL). Returns ``True`` once a broker accepted all of it, ``False`` when none could be
    reached or none answered as Kafka does (in ``timeout`` seconds each): a worker then starts
    as it would without this check, and Faust reports what it finds.

    Raises
    ------
    KafkaAccessError
        When a broker refused the credentials or the TLS handshake failed (an untrusted
        certificate, a host name the certificate does not name, a listener that closes the
        connection on a TLS handshake): retrying would not help.
    """
    options = client_options(kafka)
    options.pop("bootstrap_servers")
    context: ssl.SSLContext | None = options.get("ssl_context")
    for server in kafka.bootstrap_servers.split(","):
        host, _, port_text = server.rpartition(":")
        port = int(port_text)
        where = f"Kafka at {server} ({describe(kafka)})"
        if not await _tcp_reachable(host, port, timeout):
            continue
        if context is not None:
            await _check_tls(host, port, context, timeout, where, kafka)
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(timeout * 1000), **options),
                timeout,
            )
        except _REFUSED as exc:
            raise KafkaAccessError(f"{where} refused the credentials: {_reason(exc)}") from None
        except ssl.SSLError as exc:  # after a good handshake above: unlikely
            raise KafkaAccessError(f"{where}: TLS failed: {_tls_reason(exc)}") from None
        except (KafkaError, OSError, TimeoutError):
            continue  # no Kafka answer (e.g. a TLS listener, for PLAINTEXT): the next one
        conn.close()
        return True
    return False


async def _tcp_reachable(host: str, port: int, timeout: float) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.transport.abort()
    return True


async def _check_tls(
    host: str,
    port: int,
    context: ssl.SSLContext,
    timeout: float,
    where: str,
    kafka: KafkaSettings,
) -> None:
    """A TLS handshake with ``host:port``; raises :class:`KafkaAccessError` if it fails."""
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host), timeout
        )
    except ssl.SSLCertVerificationError as exc:
        hint = (
            f"is ssl_cafile {kafka.ssl_cafile} the authority of its certificate?"
            if kafka.ssl_cafile
            else "set ssl_cafile to the authority of its certificate"
        )
        raise KafkaAccessError(f"{where}: TLS failed: {_tls_reason(exc)} ({hint})") from None
    except (ssl.SSLError, ConnectionError, EOFError) as exc:
        raise KafkaAccessError(
            f"{where}: TLS failed: {_tls_reason(exc)} (is {host}:{port} a TLS listener?)"
        ) from None
    except (OSError, TimeoutError):
        return  # no answer: the Kafka connection that follows finds out more
    writer.transport.abort()  # no closing handshake: nothing was sent


def _tls_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message)
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, ConnectionError | EOFError):
        return "the connection was closed during the handshake"
    return str(exc) or type(exc).__name__


async def start_client(client: Any, kafka: KafkaSettings) -> None:
    """``await client.start()`` for an aiokafka producer, consumer or admin client made with
    :func:`client_options`; when it cannot reach the brokers, say why.

    Raises
    ------
    KafkaAccessError
        When the brokers refused the credentials or TLS failed (see :func:`check_access`), or
        when none could be reached or none answered as Kafka does.
    """
    try:
        await client.start()
    except KafkaConnectionError:
        await _close(client)
        if await check_access(kafka):  # raises KafkaAccessError if that is the reason
            raise  # a broker answers now: nothing more to say than aiokafka's error
        raise KafkaAccessError(
            f"Kafka at {kafka.bootstrap_servers} ({describe(kafka)}): no broker could be "
            "reached, or none answered as a Kafka listener with this security_protocol"
        ) from None


async def _close(client: Any) -> None:
    close = getattr(client, "stop", None) or client.close
    with contextlib.suppress(KafkaError, OSError):  # a client that never connected
        await close()


def _reason(exc: BaseException) -> str:
    """The broker's words for a refusal (the first argument of aiokafka's error)."""
    return str(exc.args[0]) if exc.args else type(exc).__name__
