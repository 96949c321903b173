"""HTTPS to the vetted address: the TLS server name and Host header are the URL's host, the
certificate is checked against it, and the connection goes where the check said."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from alerts.delivery import HttpxSender
from alerts.ssrf import Allowlist, vet_url
from tests.support import PATIENCE_S


def self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_goes_to_the_vetted_address_with_the_original_name(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "hooks.test")
    seen: dict[str, str | None] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            seen["host"] = self.headers.get("host")
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    def sni(sock: ssl.SSLSocket, name: str | None, ctx: ssl.SSLContext) -> None:
        seen["sni"] = name

    server_ctx.sni_callback = sni
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # "hooks.test" resolves (in this test) to 127.0.0.1, which the allowlist permits.
        target = vet_url(
            f"https://hooks.test:{port}/in",
            Allowlist.parse(["127.0.0.1"]),
            lambda h, p: ["127.0.0.1"],
        )
        client_ctx = ssl.create_default_context(cafile=str(cert))
        sender = HttpxSender(timeout=PATIENCE_S, verify=client_ctx)
        try:
            r = sender.post(target, b"{}", {"Content-Type": "application/json"})
        finally:
            sender.close()
    finally:
        server.shutdown()
        server.server_close()
    assert r.status_code == 204, r.error
    assert seen == {"sni": "hooks.test", "host": f"hooks.test:{port}"}


def test_a_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "other.test")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = vet_url(
            f"https://hooks.test:{server.server_address[1]}/",
            Allowlist.parse(["127.0.0.1"]),
            lambda h, p: ["127.0.0.1"],
        )
        sender = HttpxSender(
            timeout=PATIENCE_S, verify=ssl.create_default_context(cafile=str(cert))
        )
        try:
            r = sender.post(target, b"{}", {})
        finally:
            sender.close()
    finally:
        server.shutdown()
        server.server_close()
    assert r.status_code is None and r.error is not None, r
    assert "certificate" in r.error.lower() or "ssl" in r.error.lower(), r.error  # not a timeout
