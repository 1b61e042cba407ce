"""engine.runtime.kafka_clients: one set of client settings from [kafka], for Faust and aiokafka.

The secured broker itself is in tests/engine/test_secured_connections.py; these need none.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import AuthProtocol, SASLMechanism

from engine.config import Config, KafkaSettings
from engine.devtools.certificates import make_certificates
from engine.devtools.produce import publish
from engine.runtime.app import _new_app
from engine.runtime.kafka_clients import (
    KafkaAccessError,
    check_access,
    client_options,
    describe,
    faust_credentials,
    ssl_context,
)

PASSWORD = "Kafka-pw-7d1e"


def sasl(**kw: Any) -> KafkaSettings:
    settings: dict[str, Any] = {
        "broker": "kafka://k1:9093;kafka://k2:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "kestrel",
        "sasl_password": PASSWORD,
        **kw,
    }
    return KafkaSettings.model_validate(settings)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certificates(tmp_path_factory.mktemp("certs")).ca_cert


def test_plaintext_options_name_the_brokers_only() -> None:
    kafka = KafkaSettings(broker="kafka://k1:9092;kafka://k2:9092")
    assert client_options(kafka) == {
        "bootstrap_servers": "k1:9092,k2:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert client_options(kafka, bootstrap="other:9092")["bootstrap_servers"] == "other:9092"
    assert faust_credentials(kafka) is None


def test_sasl_ssl_options_carry_the_credentials_and_a_tls_context(ca: Path) -> None:
    options = client_options(sasl(ssl_cafile=str(ca)))
    context = options.pop("ssl_context")
    assert options == {
        "bootstrap_servers": "k1:9093,k2:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "kestrel",
        "sasl_plain_password": PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # The CA of the file is trusted (and not only the system's).
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "Kestrel test CA"),),)
    ]


def test_sasl_plaintext_has_no_tls_context() -> None:
    options = client_options(sasl(security_protocol="SASL_PLAINTEXT"))
    assert "ssl_context" not in options
    assert options["security_protocol"] == "SASL_PLAINTEXT"


def test_ssl_check_hostname_off_still_verifies_the_certificate(ca: Path) -> None:
    context = ssl_context(sasl(ssl_cafile=str(ca), ssl_check_hostname=False))
    assert context is not None
    assert not context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_a_file_that_is_no_certificate_is_an_error_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"^kafka\.ssl_cafile: cannot load .*ca\.pem") as info:
        ssl_context(KafkaSettings(security_protocol="SSL", ssl_cafile=str(bad)))
    print(info.value)
    with pytest.raises(ValueError, match=r"^kafka\.ssl_certfile: cannot load .*ca\.pem"):
        ssl_context(KafkaSettings(security_protocol="SSL", ssl_certfile=str(bad)))


def test_faust_gets_sasl_credentials_over_tls(ca: Path) -> None:
    credentials = faust_credentials(sasl(ssl_cafile=str(ca)))
    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    assert (credentials.username, credentials.password) == ("kestrel", PASSWORD)
    assert credentials.ssl_context is not None
    assert PASSWORD not in repr(credentials)


def test_faust_gets_sasl_credentials_without_tls() -> None:
    credentials = faust_credentials(
        sasl(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN")
    )
    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_PLAINTEXT
    assert credentials.mechanism is SASLMechanism.PLAIN


def test_faust_gets_an_ssl_context_for_ssl(ca: Path) -> None:
    credentials = faust_credentials(KafkaSettings(security_protocol="SSL", ssl_cafile=str(ca)))
    assert isinstance(credentials, SSLCredentials)
    assert credentials.protocol is AuthProtocol.SSL


def test_the_worker_app_is_built_with_the_credentials(ca: Path, tmp_path: Path) -> None:
    cfg = Config.model_validate(
        {
            "kafka": sasl(ssl_cafile=str(ca)).model_dump(mode="python"),
            "worker": {"data_dir": str(tmp_path)},
        }
    )
    app = _new_app(cfg)
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_SSL
    # Faust's web views of table data and of the other workers' addresses are off.
    assert not app.conf.web_tables_enabled and not app.conf.web_router_enabled


def test_describe_names_no_password() -> None:
    text = describe(sasl())
    assert text == "SASL_SSL, SCRAM-SHA-512 as user 'kestrel'"
    assert PASSWORD not in text


def test_check_access_to_no_broker_is_not_an_access_error(closed_port: int) -> None:
    # Nothing listens: the broker may be down; that is no access error (Faust reports it).
    kafka = KafkaSettings(broker=f"kafka://127.0.0.1:{closed_port}")
    assert asyncio.run(check_access(kafka, timeout=5)) is False


def test_check_access_to_something_that_is_not_kafka_is_not_an_access_error() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        kafka = KafkaSettings(broker=f"kafka://127.0.0.1:{port}")
        assert asyncio.run(check_access(kafka, timeout=1)) is False


def test_a_command_that_reaches_no_broker_says_so(closed_port: int) -> None:
    kafka = KafkaSettings(broker=f"kafka://127.0.0.1:{closed_port}")
    with pytest.raises(KafkaAccessError) as info:
        asyncio.run(publish(kafka, "t", [(None, b"x")]))
    assert str(info.value) == (
        f"Kafka at 127.0.0.1:{closed_port} (PLAINTEXT): no broker could be reached, or none "
        "answered as a Kafka listener with this security_protocol"
    )
