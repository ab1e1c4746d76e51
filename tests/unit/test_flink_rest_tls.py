"""The platform's Flink REST client against an API that requires a client certificate (infra's mutual TLS)."""

from __future__ import annotations

import datetime
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hybrid_platform import config, flink_ops, runtime


def _issue(folder: Path, name: str, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca[0].subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    cert = builder.sign(ca[1] if ca else key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tls.crt").write_bytes(cert.public_bytes(pem))
    (folder / "tls.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key


@pytest.fixture
def mutual_tls_api(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    ca = _issue(tmp_path / "ca", "rest-ca", None)
    _issue(tmp_path / "server", "flink-rest", ca)
    _issue(tmp_path / "client", "airflow", ca)
    stranger_ca = _issue(tmp_path / "stranger-ca", "other-ca", None)
    _issue(tmp_path / "stranger", "stranger", stranger_ca)
    for folder in ("client", "stranger"):
        (tmp_path / folder / "ca.crt").write_bytes((tmp_path / "ca" / "tls.crt").read_bytes())

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps({"flink-version": "2.1.3"}).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Api)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca" / "tls.crt"))
    context.load_cert_chain(str(tmp_path / "server" / "tls.crt"), str(tmp_path / "server" / "tls.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://localhost:{server.server_port}", tmp_path / "client", tmp_path / "stranger"
    server.shutdown()


def test_the_rest_client_presents_its_certificate_and_nothing_else_gets_in(
    mutual_tls_api: tuple[str, Path, Path], tmp_path: Path
) -> None:
    url, client, stranger = mutual_tls_api
    base = {"HDP_HOME": str(tmp_path / "home"), "HDP_FLINK_REST_URL": url}
    cfg = config.load({**base, "HDP_FLINK_REST_TLS_DIR": str(client)})
    assert flink_ops.request(cfg, "GET", "/config") == {"flink-version": "2.1.3"}
    for refused in (config.load(base), config.load({**base, "HDP_FLINK_REST_TLS_DIR": str(stranger)})):
        with pytest.raises(flink_ops.FlinkOpsError, match="not reachable"):
            flink_ops.request(refused, "GET", "/config")


def test_flink_run_gets_the_same_client_certificate_as_keystores(tmp_path: Path) -> None:
    cfg = config.load({"HDP_HOME": str(tmp_path), "HDP_FLINK_REST_TLS_DIR": "/opt/hdp/flink-rest-tls"})
    settings = runtime.flink_rest_client_tls(cfg)
    assert settings["security.ssl.rest.authentication-enabled"] == "true"
    assert settings["security.ssl.rest.keystore"] == "/opt/hdp/flink-rest-tls/keystore.jks"
    assert settings["security.ssl.rest.truststore-password"] == "hdp-flink-rest-keystore"  # pragma: allowlist secret
    assert runtime.flink_rest_client_tls(config.load({"HDP_HOME": str(tmp_path)})) == {}
