"""engine.devtools.certificates: a throwaway CA and a certificate clients accept for loopback."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from engine.devtools.certificates import CertificateFiles, make_certificates


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake in memory between ``server`` and ``client`` (raises if one refuses)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    tls_client = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    tls_server = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, tls in (("client", tls_client), ("server", tls_server)):
            if not done[name]:
                try:
                    tls.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError(f"handshake did not finish: {done}")


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost"])
def test_a_client_trusting_the_ca_accepts_the_certificate(
    certs: CertificateFiles, hostname: str
) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(certs.cert, certs.key)
    client = ssl.create_default_context(cafile=certs.ca_cert)
    _handshake(server, client, hostname)


def test_another_host_name_and_another_ca_are_refused(
    certs: CertificateFiles, tmp_path: Path
) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(certs.cert, certs.key)
    client = ssl.create_default_context(cafile=certs.ca_cert)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(server, client, "example.com")
    other = make_certificates(tmp_path / "other")
    stranger = ssl.create_default_context(cafile=other.ca_cert)
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        _handshake(server, stranger, "127.0.0.1")


def test_the_keystore_holds_the_key_and_the_chain_and_keys_are_private(
    certs: CertificateFiles,
) -> None:
    text = certs.keystore.read_text()
    assert text.count("BEGIN PRIVATE KEY") == 1
    assert text.count("BEGIN CERTIFICATE") == 2  # the certificate, then the CA's
    for secret in (certs.key, certs.ca_key, certs.keystore):
        assert secret.stat().st_mode & 0o077 == 0
