"""Kafka security as the platform provisions it: the local broker's TLS material, SCRAM users and ACLs.

The principals and their grants are declared once in ``kafka_auth.PRINCIPALS``; this module applies them to a
broker (``hdp up`` locally; ``hdp kafka setup`` on a cluster, as the admin principal) and makes the local
runtime's CA and broker certificate. Idempotent: running it again changes nothing that is already right.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import Any

from hybrid_platform import kafka_auth
from hybrid_platform.config import ConfigError, PlatformConfig, kafka_ca_file, write_private

#: SCRAM's iteration count: Kafka's minimum is 4,096; 8,192 as librdkafka and the Java client default to.
SCRAM_ITERATIONS = 8192


class KafkaAdminError(RuntimeError):
    """Provisioning users or ACLs failed; the message says which and why."""


def broker_pem(cfg: PlatformConfig) -> Path:
    """The local broker's private key and certificate (PEM, PKCS#8), beside the CA that signed it."""
    return kafka_ca_file(cfg.home).parent / "broker.pem"


def ensure_local_tls(cfg: PlatformConfig, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> None:
    """Create, once, a private CA and a broker certificate for ``hosts`` (and the bind host) in the state folder.

    The CA's key is not kept: nothing else is ever signed with it, so a stolen state folder cannot mint a
    broker clients would trust.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_path, broker_path = kafka_ca_file(cfg.home), broker_pem(cfg)
    if ca_path.exists() and broker_path.exists():
        return
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hybrid-platform local Kafka CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys((*hosts, cfg.bind_host)):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hdp-broker")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    for path in (ca_path, broker_path):
        path.unlink(missing_ok=True)
    write_private(broker_path, (key_pem + cert.public_bytes(pem) + ca.public_bytes(pem)).decode())
    write_private(ca_path, ca.public_bytes(pem).decode())


def admin_client(cfg: PlatformConfig) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient(cfg.kafka_client("admin", log_level=0))


def _binding(principal: kafka_auth.Principal, grant: kafka_auth.Grant) -> Any:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, untyped
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    resource = {
        "topic": ResourceType.TOPIC,
        "group": ResourceType.GROUP,
        "transactional_id": ResourceType.TRANSACTIONAL_ID,
    }[grant.resource]
    pattern = ResourcePatternType.PREFIXED if grant.prefixed else ResourcePatternType.LITERAL
    return AclBinding(
        resource,
        grant.name,
        pattern,
        f"User:{principal.username}",
        "*",
        getattr(AclOperation, grant.operation),
        AclPermissionType.ALLOW,
    )


def ensure_principals(cfg: PlatformConfig, timeout_s: float = 30.0) -> list[str]:
    """Upsert the SCRAM credential of every principal whose password this process holds, and every ACL of
    ``kafka_auth.PRINCIPALS``; returns the users written. Runs as the admin principal."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, untyped
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    if not cfg.kafka_security.enabled:
        return []
    admin = admin_client(cfg)
    passwords = dict(cfg.kafka_security.passwords)
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts = [
        UserScramCredentialUpsertion(p.username, info, passwords[p.name].encode())
        for p in kafka_auth.PRINCIPALS
        if p.name in passwords and p.name != "broker"  # the broker's own user is made when its storage is
    ]
    bindings = [_binding(p, g) for p in kafka_auth.PRINCIPALS for g in p.grants]
    try:
        for future in admin.alter_user_scram_credentials(upserts, request_timeout=timeout_s).values():
            future.result(timeout=timeout_s)
        for future in admin.create_acls(bindings, request_timeout=timeout_s).values():
            future.result(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaAdminError(f"provisioning Kafka users and ACLs failed: {exc}") from None
    return [u.user for u in upserts]


def admin_available(cfg: PlatformConfig) -> bool:
    """Whether this process can act as the admin principal (locally always; on a cluster only where its
    password is set, e.g. the setup Job)."""
    try:
        cfg.kafka_client("admin")
    except ConfigError:
        return False
    return True
