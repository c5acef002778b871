"""A throwaway self-signed TLS certificate for 127.0.0.1 and localhost, made when the local stack starts.

    cert_pem, key_pem = make_self_signed(workdir / "tls")

The keyless local stack serves Azurite and the Batch emulator over HTTPS with it (Bearer tokens
are never sent over plain HTTP). The certificate is its own trust anchor: only the processes that
need it trust it (REQUESTS_CA_BUNDLE in their environment), never the system. `cryptography`
comes with azure-identity (msal needs it), so no openssl command is needed.
"""

import datetime
import ipaddress
import os
from pathlib import Path


def make_self_signed(directory: Path, days: int = 2) -> tuple[Path, Path]:
    """Write tls-cert.pem and tls-key.pem (mode 0600) into `directory`; returns their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mpi-batch-toolkit local stack 127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    # CA:TRUE and the key identifiers make it a valid trust anchor under Python's strict X.509 checks.
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=False,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(key_id, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(key_id), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls-cert.pem", directory / "tls-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return cert_path, key_path
