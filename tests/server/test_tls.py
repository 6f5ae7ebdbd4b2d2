"""The local certificate: names and addresses, reuse while valid, a private key file."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from server.tls import ensure_certificate


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certificate_names_localhost_and_both_loopbacks(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path / "tls")
    assert (cert_path, key_path) == (tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem")
    cert = _load(cert_path)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc <= now
    assert dt.timedelta(days=364) < cert.not_valid_after_utc - now <= dt.timedelta(days=365)


def test_key_file_is_private_and_matches_the_certificate(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == _load(cert_path).public_key()


def test_a_valid_certificate_is_reused(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path)
    cert, key = cert_path.read_bytes(), key_path.read_bytes()
    assert ensure_certificate(tmp_path) == (cert_path, key_path)
    assert (cert_path.read_bytes(), key_path.read_bytes()) == (cert, key)


def test_a_certificate_about_to_expire_is_replaced(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    old = _load(cert_path)
    now = dt.datetime.now(dt.UTC)
    expiring = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=360))
        .not_valid_after(now + dt.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(expiring.public_bytes(serialization.Encoding.PEM))

    ensure_certificate(tmp_path)

    renewed = _load(cert_path)
    assert renewed.serial_number != expiring.serial_number
    assert renewed.not_valid_after_utc - now > dt.timedelta(days=364)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_a_missing_key_file_means_a_new_pair(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path)
    first = _load(cert_path).serial_number
    key_path.unlink()
    ensure_certificate(tmp_path)
    assert _load(cert_path).serial_number != first
    assert key_path.exists()
