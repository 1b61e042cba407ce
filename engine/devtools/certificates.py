"""Throwaway TLS certificates for local brokers and Redis: a CA and one certificate it signs.

The tests start Apache Kafka with a SASL_SSL listener and Redis with TLS, and need a server
certificate whose authority the client trusts. :func:`make_certificates` makes one with the
``openssl`` command line (a missing ``openssl`` raises :class:`~engine.devtools.broker.BrokerError`
saying how to get it): a self-signed CA, then a key and a certificate for ``127.0.0.1`` and
``localhost`` (subject alternative names, so clients that check the host name accept it) that
the CA signs, valid for ``days`` days. The same certificate serves as the server's and, for
mutual TLS, as a client's (its extended key usage allows both).

Keys are unencrypted PKCS#8 PEM files readable only by their owner. Nothing here is fit for
production: the CA's key sits next to the certificates.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.devtools.broker import BrokerError

__all__ = ["CertificateFiles", "make_certificates"]


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """The files :func:`make_certificates` writes (all PEM)."""

    #: The CA's certificate: what clients trust (``ssl_cafile``).
    ca_cert: Path
    #: The CA's private key.
    ca_key: Path
    #: The certificate for the hosts, signed by the CA.
    cert: Path
    #: Its private key (PKCS#8, unencrypted).
    key: Path
    #: The key, then the certificate, then the CA's certificate, in one file: a Kafka PEM
    #: keystore (``ssl.keystore.type=PEM``).
    keystore: Path


def _openssl() -> str:
    binary = shutil.which("openssl")
    if binary is None:
        raise BrokerError(
            "the openssl command line makes the test certificates and is not installed: "
            "apt-get install -y openssl"
        )
    return binary


def _run(args: Sequence[str], cwd: Path) -> None:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(
            f"openssl failed (exit {result.returncode}): {' '.join(args[1:3])}\n"
            + (result.stdout + result.stderr)[-2000:]
        )


def make_certificates(
    directory: Path,
    *,
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    days: int = 2,
) -> CertificateFiles:
    """Write a CA and a certificate for ``hosts`` (IP addresses or DNS names) into ``directory``.

    Parameters
    ----------
    directory:
        Where the files go (created if missing).
    hosts:
        The names the certificate is valid for; the first is also its common name.
    days:
        Validity of both certificates, in days.
    """
    openssl = _openssl()
    directory.mkdir(parents=True, exist_ok=True)
    files = CertificateFiles(
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca.key",
        cert=directory / "server.pem",
        key=directory / "server.key",
        keystore=directory / "server-keystore.pem",
    )
    names = ",".join(
        f"IP:{h}" if h.replace(".", "").isdigit() or ":" in h else f"DNS:{h}" for h in hosts
    )
    extensions = directory / "server.ext"
    extensions.write_text(
        f"subjectAltName={names}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    rsa = ["-newkey", "rsa:2048", "-nodes"]
    _run(
        [
            openssl,
            "req",
            "-x509",
            *rsa,
            "-keyout",
            str(files.ca_key),
            "-out",
            str(files.ca_cert),
            "-days",
            str(days),
            "-subj",
            "/CN=Kestrel test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        directory,
    )
    request = directory / "server.csr"
    _run(
        [
            openssl,
            "req",
            *rsa,
            "-keyout",
            str(files.key),
            "-out",
            str(request),
            "-subj",
            f"/CN={hosts[0]}",
        ],
        directory,
    )
    _run(
        [
            openssl,
            "x509",
            "-req",
            "-in",
            str(request),
            "-CA",
            str(files.ca_cert),
            "-CAkey",
            str(files.ca_key),
            "-CAcreateserial",
            "-out",
            str(files.cert),
            "-days",
            str(days),
            "-extfile",
            str(extensions),
        ],
        directory,
    )
    files.keystore.write_text(
        files.key.read_text() + files.cert.read_text() + files.ca_cert.read_text()
    )
    for secret in (files.ca_key, files.key, files.keystore):
        secret.chmod(0o600)
    return files
