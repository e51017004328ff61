"""Pytest fixtures that run the TF Serving test double on the shared tiny export (registered in tests/conftest.py).

- `serving_double`: plain REST + gRPC on 127.0.0.1; model `tiny` versions 1 and 2 (the same export twice),
  labels stable -> 1 and canary -> 2. Each test gets it with `delay` 0 and an empty `calls` list.
- `tls_serving_double`: the same over TLS, with `.ca_cert` the path of the CA that signed its certificate.
- `closed_port`: a loopback port nothing listens on (an unreachable server).
"""
from __future__ import annotations

import datetime
import socket

import pytest

LABELS = {"stable": 1, "canary": 2}


def _double_models(tiny_export):
    layout_dir = tiny_export.dirs["channels_last"]
    return {tiny_export.name: {1: layout_dir, 2: layout_dir}}, {tiny_export.name: dict(LABELS)}


@pytest.fixture(scope="session")
def _serving_double_session(tiny_export):
    from tests.serving_double import ServingDouble

    models, labels = _double_models(tiny_export)
    with ServingDouble(models, labels) as double:
        yield double


@pytest.fixture
def serving_double(_serving_double_session):
    double = _serving_double_session
    double.delay = 0.0
    double.calls.clear()
    yield double
    double.delay = 0.0


def make_certificates(directory) -> tuple[bytes, bytes, object]:
    """A throwaway CA and a server certificate for localhost/127.0.0.1 signed by it: (cert, key, CA path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "serving-double test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem, ca_path


@pytest.fixture(scope="session")
def tls_serving_double(tiny_export, tmp_path_factory):
    from tests.serving_double import ServingDouble

    cert, key, ca_path = make_certificates(tmp_path_factory.mktemp("tls"))
    models, labels = _double_models(tiny_export)
    with ServingDouble(models, labels, tls=(cert, key)) as double:
        double.ca_cert = ca_path
        yield double


@pytest.fixture
def closed_port() -> int:
    """A loopback port that was free a moment ago and that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
