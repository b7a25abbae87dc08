"""The fetch guard (facefaas.fetch): what is refused before any connection, and real fetches to
an image host on 127.0.0.1 admitted by the allowlist.

No test here sends traffic anywhere but loopback: the refusal matrix runs with the connection
function replaced by one that fails the test, and names are answered by a stub resolver.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from loopback_hosts import Host, serve
from PIL import Image

from facefaas.errors import (
    FacefaasError,
    FetchRefusedError,
    TooLargeError,
    UpstreamError,
    UpstreamTimeoutError,
)
from facefaas.fetch import (
    Allowlist,
    FetchPolicy,
    check_target,
    fetch_image,
    send,
    sniff_image,
)
from facefaas.fetch.guard import where

pytestmark = pytest.mark.timeout(60)

LOOPBACK = ["127.0.0.1/32"]


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()


class Resolver:
    """A stub resolver: fixed answers per name, each call recorded; unknown names fail."""

    def __init__(self, answers: dict[str, list[str]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.answers:
            raise OSError(f"stub resolver: no answer for {host}")
        return self.answers[host]


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection or DNS lookup fails the test."""

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        pytest.fail(f"a connection was attempted: {args!r}")

    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(socket, "getaddrinfo", forbidden)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address connected to (connections still happen, to loopback only)."""
    made: list[tuple[str, int]] = []
    real = socket.create_connection

    def recorded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        made.append(address)
        assert address[0] in ("127.0.0.1", "::1"), f"a connection to {address} left loopback"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recorded)
    return made


@pytest.fixture
def host() -> Iterator[Host]:
    with serve(PNG, slow_seconds=3.0) as running:
        yield running


def _policy(**overrides: Any) -> FetchPolicy:
    values: dict[str, Any] = {
        "allow": LOOPBACK,
        "resolver": Resolver(),
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "timeout": 10.0,
    }
    return FetchPolicy(**{**values, **overrides})


# -- the refusal matrix: each case refused before any connection ------------------------------

REFUSED_URLS = {
    "scheme-ftp": "ftp://example.com/a.jpg",
    "scheme-file": "file:///etc/passwd",
    "scheme-gopher": "gopher://example.com/",
    "relative-url": "/just/a/path.jpg",
    "credentials-in-url": "http://user:secret@example.com/a.jpg",
    "loopback": "http://127.0.0.1/a.jpg",
    "loopback-other": "http://127.255.255.254:8080/",
    "loopback-decimal": "http://2130706433/",
    "loopback-octal": "http://0177.0.0.1/",
    "loopback-hex": "http://0x7f.1/",
    "loopback-hex-whole": "http://0x7f000001/",
    "loopback-short": "http://127.1/",
    "loopback-trailing-dot": "http://127.0.0.1./",
    "loopback-ipv6": "http://[::1]/",
    "private-10": "http://10.1.2.3/",
    "private-172": "http://172.16.0.1/",
    "private-172-top": "http://172.31.255.254/",
    "private-192": "http://192.168.1.1/",
    "private-octal": "http://0300.0250.0.1/",
    "private-hex": "http://0xa.0.0.1/",
    "link-local": "http://169.254.1.1/",
    "link-local-ipv6": "http://[fe80::1]/",
    "carrier-grade-nat": "http://100.64.0.1/",
    "carrier-grade-nat-top": "http://100.127.255.254/",
    "metadata-aws": "http://169.254.169.254/latest/meta-data/",
    "metadata-aws-decimal": "http://2852039166/latest/meta-data/",
    "metadata-aws-ipv6": "http://[fd00:ec2::254]/",
    "metadata-alibaba": "http://100.100.100.200/latest/meta-data/",
    "metadata-ecs": "http://169.254.170.2/v2/credentials",
    "multicast": "http://224.0.0.1/",
    "multicast-ipv6": "http://[ff02::1]/",
    "unspecified": "http://0.0.0.0/",
    "unspecified-zero": "http://0/",
    "unspecified-ipv6": "http://[::]/",
    "broadcast": "http://255.255.255.255/",
    "reserved": "http://240.0.0.1/",
    "benchmarking": "http://198.18.0.1/",
    "documentation": "http://192.0.2.1/",
    "unique-local": "http://[fc00::1]/",
    "unique-local-fd": "http://[fd12:3456::1]/",
    "site-local": "http://[fec0::1]/",
    "ipv4-mapped-loopback": "http://[::ffff:127.0.0.1]/",
    "ipv4-mapped-hex": "http://[::ffff:7f00:1]/",
    "ipv4-mapped-metadata": "http://[::ffff:169.254.169.254]/",
    "ipv4-mapped-private": "http://[::ffff:10.0.0.1]/",
    "ipv4-compatible": "http://[::127.0.0.1]/",
    "ipv4-translated": "http://[::ffff:0:7f00:1]/",
    "6to4-loopback": "http://[2002:7f00:1::1]/",
    "6to4-metadata": "http://[2002:a9fe:a9fe::]/",
    "teredo-loopback": "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
    "nat64-loopback": "http://[64:ff9b::7f00:1]/",
    "nat64-metadata": "http://[64:ff9b::a9fe:a9fe]/",
    "too-many-parts": "http://1.2.3.4.5/",
    "number-too-large": "http://0x100000000/",
    "name-to-loopback": "http://localhost.test/",
    "name-to-metadata": "http://metadata.test/",
    "name-to-private-among-public": "http://mixed.test/",
    "name-to-mapped-loopback": "http://mapped.test/",
    "name-to-unique-local": "http://ula.test/",
    "name-unresolvable": "http://nowhere.test/",
}

STUB_ANSWERS = {
    "localhost.test": ["127.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "mixed.test": ["93.184.216.34", "10.0.0.5"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "ula.test": ["fd00::5"],
}


@pytest.mark.parametrize("url", REFUSED_URLS.values(), ids=REFUSED_URLS.keys())
def test_refused_before_any_connection(url: str, no_connections: None) -> None:
    policy = FetchPolicy(resolver=Resolver(STUB_ANSWERS))
    # A name that does not resolve is the DNS's failure (502); everything else is refused (422).
    expected: type[FacefaasError] = UpstreamError if "nowhere" in url else FetchRefusedError
    with pytest.raises(expected) as caught:
        fetch_image(url, policy)
    assert getattr(caught.value, "reason", None)
    assert caught.value.status in (422, 502)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hook", "https://169.254.169.254/hook", "http://[::1]/hook",
     "http://localhost.test/hook", "ftp://example.com/hook"],
    ids=["loopback", "metadata", "loopback-ipv6", "name-to-loopback", "scheme"],
)  # fmt: skip
def test_callback_target_refused_before_any_connection(url: str, no_connections: None) -> None:
    with pytest.raises(FetchRefusedError):
        send(url, b"{}", FetchPolicy(resolver=Resolver(STUB_ANSWERS)))


@pytest.mark.parametrize(
    ("url", "address"),
    [("http://2130706433/", "127.0.0.1"), ("http://0x7f.1/", "127.0.0.1"),
     ("http://127.1/", "127.0.0.1"), ("http://0x7f000001/", "127.0.0.1"),
     ("http://0177.0.0.01/", None)],
    ids=["decimal", "hex-short", "short", "hex-whole", "octal-refused-by-url-parser"],
)  # fmt: skip
def test_numeric_spellings_are_read_as_addresses(
    url: str, address: str | None, no_connections: None
) -> None:
    policy = FetchPolicy(allow=["127.0.0.0/8"])
    if address is None:  # httpx cannot even parse it: refused, saying what it spells
        with pytest.raises(FetchRefusedError, match=r"127\.0\.0\.1"):
            check_target(url, policy)
    else:
        assert check_target(url, policy).address == address


def test_public_address_is_admitted_and_pinned(no_connections: None) -> None:
    resolver = Resolver({"images.example": ["93.184.216.34", "2606:2800:220:1::1"]})
    target = check_target("https://images.example/a.jpg", FetchPolicy(resolver=resolver))
    assert target.address == "93.184.216.34"
    assert resolver.calls == ["images.example"]


def test_allowlist_admits_cidr_and_names_only(no_connections: None) -> None:
    resolver = Resolver({"cache.internal": ["10.0.0.7"], "img.corp.internal": ["10.9.9.9"],
                         "other.test": ["10.0.0.7"]})  # fmt: skip
    policy = FetchPolicy(allow=["192.168.5.0/24", "cache.internal", "*.corp.internal"],
                         resolver=resolver)  # fmt: skip
    assert check_target("http://192.168.5.20/", policy).address == "192.168.5.20"
    assert check_target("http://cache.internal/", policy).address == "10.0.0.7"
    assert check_target("http://img.corp.internal/", policy).address == "10.9.9.9"
    for refused in ("http://192.168.6.1/", "http://other.test/", "http://169.254.169.254/"):
        with pytest.raises(FetchRefusedError):
            check_target(refused, policy)


@pytest.mark.parametrize("entry", ["not a host", "10.0.0.0/33", "http://x.example/", "1.2.3"])
def test_allowlist_refuses_malformed_entries(entry: str) -> None:
    with pytest.raises(ValueError, match="allowlist"):
        Allowlist.parse([entry])


@pytest.mark.parametrize(
    ("head", "media_type"),
    [(PNG, "image/png"), (b"\xff\xd8\xff\xe0" + bytes(20), "image/jpeg"),
     (b"GIF89a" + bytes(10), "image/gif"), (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
     (b"<!doctype html>", None), (b'{"image": 1}', None), (b"RIFF\0\0\0\0WAVEfmt ", None)],
    ids=["png", "jpeg", "gif", "webp", "html", "json", "wav"],
)  # fmt: skip
def test_sniffing_reads_the_first_bytes(head: bytes, media_type: str | None) -> None:
    assert sniff_image(head) == media_type


# -- real fetches, to an image host on 127.0.0.1 admitted by the allowlist --------------------


def test_fetches_an_image(host: Host, connections: list[tuple[str, int]]) -> None:
    fetched = fetch_image(f"{host.url}/img.png", _policy())
    assert fetched.data == PNG
    assert fetched.media_type == "image/png"
    assert host.requests[-1].headers["accept-encoding"] == "identity"
    assert connections == [("127.0.0.1", host.port)]


def test_content_type_is_not_needed(host: Host) -> None:
    assert fetch_image(f"{host.url}/img-typeless", _policy()).data == PNG


def test_follows_five_redirects_each_checked(host: Host) -> None:
    fetched = fetch_image(f"{host.url}/redirect/5", _policy())
    assert fetched.data == PNG
    assert fetched.url == f"{host.url}/img.png"
    assert len(host.requests) == 6


def test_sixth_redirect_is_refused(host: Host) -> None:
    with pytest.raises(UpstreamError) as caught:
        fetch_image(f"{host.url}/redirect/6", _policy())
    assert caught.value.reason == "too-many-redirects"
    assert caught.value.status == 502


@pytest.mark.parametrize(
    "location",
    ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]:80/",
     "http://2130706434:1/", "http://localhost.test/", "file:///etc/passwd"],
    ids=["metadata", "private", "loopback-ipv6", "loopback-decimal", "name-to-loopback",
         "scheme"],
)  # fmt: skip
def test_redirect_from_an_allowed_host_to_a_refused_target_is_refused(
    host: Host, connections: list[tuple[str, int]], location: str
) -> None:
    # Only 127.0.0.1/32 is admitted: ::1, 127.0.0.2 and the rest stay refused.
    policy = _policy(resolver=Resolver({"localhost.test": ["127.0.0.2"]}))
    with pytest.raises(FetchRefusedError):
        fetch_image(f"{host.url}/to?url={location}", policy)
    assert connections == [("127.0.0.1", host.port)]  # the first hop only


def test_over_the_byte_cap_is_refused_while_streaming(host: Host) -> None:
    with pytest.raises(TooLargeError) as caught:
        fetch_image(f"{host.url}/big?n=5000000", _policy(max_bytes=200_000))
    assert caught.value.limit == 200_000
    assert caught.value.status == 413


def test_a_declared_length_over_the_cap_is_refused_before_reading(host: Host) -> None:
    with pytest.raises(TooLargeError):
        fetch_image(f"{host.url}/declared?n=1000000", _policy(max_bytes=1000))


def test_a_silent_server_times_out(host: Host) -> None:
    with pytest.raises(UpstreamTimeoutError) as caught:
        fetch_image(f"{host.url}/slow", _policy(read_timeout=0.3))
    assert caught.value.status == 504


def test_non_image_content_with_an_image_type_is_refused(host: Host) -> None:
    with pytest.raises(FetchRefusedError) as caught:
        fetch_image(f"{host.url}/html", _policy())
    assert caught.value.reason == "not-an-image"


def test_an_error_status_is_an_upstream_failure(host: Host) -> None:
    with pytest.raises(UpstreamError) as caught:
        fetch_image(f"{host.url}/status/404", _policy())
    assert (caught.value.status, caught.value.upstream_status) == (502, 404)


def test_a_closed_port_is_an_upstream_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(UpstreamError) as caught:
            fetch_image(f"http://127.0.0.1:{port}/img.png", _policy())
    assert caught.value.reason == "connect"
    assert str(caught.value).startswith(f"http://127.0.0.1:{port}: cannot connect (")  # the port


def test_dns_rebinding_uses_the_first_checked_address(
    host: Host, connections: list[tuple[str, int]]
) -> None:
    # First answer: loopback (admitted); any later one: the metadata address (refused).
    answers = iter([["127.0.0.1"]])

    def rebinding(name: str, port: int) -> list[str]:
        return next(answers, ["169.254.169.254"])

    fetched = fetch_image(f"http://images.test:{host.port}/img.png", _policy(resolver=rebinding))
    assert fetched.data == PNG
    assert connections == [("127.0.0.1", host.port)]
    assert host.requests[-1].headers["host"] == f"images.test:{host.port}"  # the name, not the IP
    assert next(answers, None) is None  # asked once


def test_send_posts_to_the_pinned_address(host: Host) -> None:
    status = send(f"{host.url}/hook?x=1", b'{"a": 1}', _policy(),
                  headers={"Content-Type": "application/json"})  # fmt: skip
    assert status == 200
    received = host.requests[-1]
    assert (received.method, received.path, received.body) == ("POST", "/hook?x=1", b'{"a": 1}')
    assert received.headers["content-type"] == "application/json"


def test_send_does_not_follow_redirects(host: Host) -> None:
    assert send(f"{host.url}/to?url=http://169.254.169.254/", b"", _policy()) == 302
    assert len(host.requests) == 1


# -- messages: where the target is (scheme://host:port, never the path), and why ---------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [("http://127.0.0.1:8766/nonexistent.jpg?token=s3cret", "http://127.0.0.1:8766"),
     ("https://127.0.0.1:8768/hook", "https://127.0.0.1:8768"),
     ("http://images.example/a.jpg", "http://images.example"),
     ("http://images.example:80/a.jpg", "http://images.example"),
     ("https://images.example:443/a.jpg", "https://images.example"),
     ("https://images.example:80/a.jpg", "https://images.example:80"),
     ("http://[::1]:8080/a", "http://[::1]:8080"), ("http://[::1]/a", "http://[::1]")],
    ids=["port", "https-port", "default", "http-80", "https-443", "https-80", "ipv6-port",
         "ipv6"],
)  # fmt: skip
def test_where_shows_the_port_unless_it_is_the_default(url: str, shown: str) -> None:
    assert where(httpx.URL(url)) == shown


@pytest.mark.parametrize(
    ("url", "message", "reason"),
    [("http://0177.0.0.1:8766/", "http://0177.0.0.1:8766: 0177.0.0.1 is 127.0.0.1, a loopback "
      "address (not admitted by the fetch allowlist)", "address"),
     ("http://127.000.000.001:8766/", "http://127.000.000.001:8766: 127.000.000.001 is "
      "127.0.0.1, a loopback address (not admitted by the fetch allowlist)", "address"),
     ("http://2130706433:8766/", "http://2130706433:8766: 2130706433 is 127.0.0.1, a loopback "
      "address (not admitted by the fetch allowlist)", "address"),
     ("http://127.0.0.1:8766/a.jpg", "http://127.0.0.1:8766: 127.0.0.1 is a loopback address "
      "(not admitted by the fetch allowlist)", "address"),
     ("http://10.0.0.1/x.jpg", "http://10.0.0.1: 10.0.0.1 is a private address (not admitted "
      "by the fetch allowlist)", "address"),
     ("http://[::ffff:127.0.0.1]:81/", "http://[::ffff:127.0.0.1]:81: ::ffff:127.0.0.1 is the "
      "IPv4-mapped form of a loopback address (not admitted by the fetch allowlist)", "address"),
     ("http://localhost.test:8080/a.jpg", "http://localhost.test:8080: localhost.test resolves "
      "to 127.0.0.1, a loopback address (not admitted by the fetch allowlist)", "address"),
     ("not a url", "'not a url' is not an absolute http or https URL", "scheme"),
     ("/just/a/path.jpg", "'/just/a/path.jpg' is not an absolute http or https URL", "scheme"),
     ("ftp://example.com/a.jpg", "ftp: URLs are not fetched, only http and https", "scheme"),
     ("http://user:secret@example.com:81/a.jpg",
      "http://example.com:81: credentials in the URL are not accepted", "credentials"),
     ("http://010.0.0.1:81/", "http://010.0.0.1:81: not a valid URL (Invalid IPv4 address: "
      "'010.0.0.1')", "invalid-url")],
    ids=["octal", "zero-padded", "decimal", "loopback", "private", "ipv4-mapped",
         "name-to-loopback", "not-a-url", "relative", "scheme", "credentials", "public-octal"],
)  # fmt: skip
def test_refusal_messages_name_the_target_and_why(
    url: str, message: str, reason: str, no_connections: None
) -> None:
    with pytest.raises(FetchRefusedError) as caught:
        fetch_image(url, FetchPolicy(resolver=Resolver(STUB_ANSWERS)))
    assert (str(caught.value), caught.value.reason) == (message, reason)


def test_a_long_non_url_is_cut_in_the_message(no_connections: None) -> None:
    with pytest.raises(FetchRefusedError) as caught:
        fetch_image("x" * 500, FetchPolicy())
    assert str(caught.value) == f"'{'x' * 79}\u2026' is not an absolute http or https URL"


def test_an_admitted_address_in_a_spelling_urls_refuse_is_refused_saying_so(
    no_connections: None,
) -> None:
    with pytest.raises(FetchRefusedError) as caught:
        check_target("http://0177.0.0.1:8766/x.jpg", FetchPolicy(allow=["127.0.0.0/8"]))
    assert str(caught.value) == (
        "http://0177.0.0.1:8766: 0177.0.0.1 is 127.0.0.1 written in a form URLs do not take: "
        "write 127.0.0.1"
    )
    assert caught.value.reason == "address"


def test_an_unresolvable_name_names_the_target(no_connections: None) -> None:
    with pytest.raises(UpstreamError) as caught:
        check_target("http://nowhere.test:8080/a.jpg", FetchPolicy(resolver=Resolver()))
    assert str(caught.value) == (
        "http://nowhere.test:8080: nowhere.test does not resolve "
        "(stub resolver: no answer for nowhere.test)"
    )


def test_upstream_messages_carry_the_port_not_the_path(host: Host) -> None:
    with pytest.raises(UpstreamError) as status:
        fetch_image(f"{host.url}/status/404?token=s3cret", _policy())
    assert str(status.value) == f"http://127.0.0.1:{host.port} answered 404 Not Found"
    with pytest.raises(UpstreamTimeoutError) as slow:
        fetch_image(f"{host.url}/slow", _policy(read_timeout=0.3))
    assert str(slow.value) == f"http://127.0.0.1:{host.port} did not answer in time (ReadTimeout)"


HINT = 'https was assumed: add "protocol": "http"'


def test_https_to_a_plain_http_host_is_a_failed_tls_handshake(host: Host) -> None:
    url = f"https://127.0.0.1:{host.port}/hook"
    with pytest.raises(UpstreamError) as fetched:
        fetch_image(url, _policy())
    assert str(fetched.value).startswith(f"https://127.0.0.1:{host.port}: TLS handshake failed (")
    assert fetched.value.reason == "connect"
    with pytest.raises(UpstreamError) as sent:
        send(url, b"{}", _policy(), tls_hint=HINT)
    message = str(sent.value)
    assert message.startswith(f"https://127.0.0.1:{host.port}: TLS handshake failed (")
    assert message.endswith(f"; {HINT}")
    assert sent.value.reason == "connect"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_an_untrusted_certificate_gets_no_plain_http_hint(tmp_path: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_self_signed(tmp_path))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def handshake() -> None:
            connection, _ = listener.accept()
            tls = context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
            with tls, contextlib.suppress(ssl.SSLError, OSError):
                tls.do_handshake()  # fails: the client refuses the certificate

        server = threading.Thread(target=handshake, daemon=True)
        server.start()
        with pytest.raises(UpstreamError) as caught:
            send(f"https://127.0.0.1:{port}/hook", b"{}", _policy(), tls_hint=HINT)
        server.join(5)
    message = str(caught.value)
    assert message.startswith(f"https://127.0.0.1:{port}: TLS handshake failed (")
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert HINT not in message
