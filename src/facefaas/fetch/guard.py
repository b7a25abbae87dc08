"""The fetch guard: which URLs may be connected to, and the one address to connect to.

:func:`check_target` reads the URL once, spells numeric hosts out as addresses, resolves a name
once with the policy's resolver, and refuses any address in :data:`_REFUSED` (with the IPv6 forms
that carry a refused IPv4) or any other non-global address, unless the operator's
:class:`Allowlist` admits it. No connection is made here.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

import httpx

from facefaas.errors import FetchRefusedError, UpstreamError

__all__ = [
    "MAX_REDIRECTS",
    "Allowlist",
    "FetchPolicy",
    "IPAddress",
    "Resolver",
    "Target",
    "check_target",
    "refusal",
    "system_resolver",
    "where",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the name resolves to, as text, in the resolver's order.
Resolver = Callable[[str, int], Sequence[str]]

MiB = 1024 * 1024
MAX_REDIRECTS = 5


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system's resolver (``getaddrinfo``), in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# -- what is refused ------------------------------------------------------------------------

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# One table per fact: each refused range with the reason given for it; the first match wins.
_REFUSED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_V4("169.254.169.254/32"), "a cloud metadata address"),
    (_V4("169.254.170.2/32"), "a cloud metadata address"),
    (_V4("100.100.100.200/32"), "a cloud metadata address"),
    (_V6("fd00:ec2::254/128"), "a cloud metadata address"),
    (_V4("0.0.0.0/8"), "an unspecified address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("100.64.0.0/10"), "a carrier-grade NAT address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("169.254.0.0/16"), "a link-local address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("255.255.255.255/32"), "the broadcast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
    (_V6("::/128"), "an unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("fc00::/7"), "an IPv6 unique-local address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a site-local address"),
    (_V6("ff00::/8"), "a multicast address"),
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries, with the name of the form, if any."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip in _V6("::ffff:0:0:0/96"):
        return "IPv4-translated", low32
    if ip in _V6("::/96"):
        return "IPv4-compatible", low32
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]
    if ip in _V6("64:ff9b::/96"):
        return "NAT64", low32
    return None


def refusal(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be connected to ("a loopback address", ...), or ``None``."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a scoped IPv6 address"
        embedded = None if int(ip) <= 1 else _embedded_ipv4(ip)  # not :: and ::1 themselves
        if embedded is not None:
            form, inner = embedded
            reason = refusal(inner)
            if reason is not None:
                return f"the {form} form of {reason}"
    for network, reason in _REFUSED:
        if ip.version == network.version and ip in network:
            return reason
    if not ip.is_global:
        return "not a public address"
    return None


# -- the operator's allowlist ---------------------------------------------------------------

_HOST_NAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")


@dataclass(frozen=True)
class Allowlist:
    """Addresses and names the guard admits although it would refuse them.

    Built from entries that are CIDRs (``127.0.0.1/32``, ``10.0.0.0/8``, ``fd00::/8``), single
    addresses, host names (``images.internal``) or ``*.`` patterns (``*.internal``: its
    subdomains). A name admitted is admitted with every address it resolves to.
    """

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    names: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Sequence[str]) -> Allowlist:
        """The allowlist of ``entries``; ``ValueError`` names an entry that is neither."""
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        names: set[str] = set()
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if not _HOST_NAME.match(entry) or _numeric_host(entry.removeprefix("*.")):
                raise ValueError(f"fetch allowlist entry {raw!r} is neither a CIDR nor a host name")
            names.add(entry)
        return cls(tuple(networks), frozenset(names))

    def admits_name(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if host in self.names:
            return True
        return any(n.startswith("*.") and host.endswith(n[1:]) for n in self.names)

    def admits_address(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)


# -- the policy and the guard ---------------------------------------------------------------


@dataclass(frozen=True)
class FetchPolicy:
    """How fetches and callbacks are made. Sizes are bytes, times seconds.

    ``allow`` is the operator's allowlist (see :class:`Allowlist`); ``max_bytes`` the largest body
    read (the service uses its upload limit); ``timeout`` bounds a whole fetch, redirects
    included; ``resolver`` turns a name into addresses (tests stub it).
    """

    allow: Sequence[str] = ()
    max_bytes: int = 32 * MiB
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    timeout: float = 30.0
    max_redirects: int = MAX_REDIRECTS
    resolver: Resolver = field(default=system_resolver, compare=False)

    @cached_property
    def allowlist(self) -> Allowlist:
        return Allowlist.parse(self.allow)


@dataclass(frozen=True)
class Target:
    """A URL the guard admitted and the address its connection must go to."""

    url: httpx.URL
    address: str


_NUMBER_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")


def _numeric_host(host: str) -> bool:
    """Whether ``host`` ends in a number: then it must be an IPv4 address (the URL standard)."""
    last = host.rstrip(".").rsplit(".", 1)[-1]
    return bool(_NUMBER_PART.match(last))


def _ipv4_from_numbers(host: str) -> ipaddress.IPv4Address:
    """An IPv4 address in any spelling ``inet_aton`` takes: 1 to 4 parts, each decimal, octal
    (leading 0) or hex (0x); the last part fills the remaining bytes (``127.1``)."""
    parts = host.rstrip(".").split(".")
    if len(parts) > 4 or not all(_NUMBER_PART.match(p) for p in parts):
        raise ValueError(host)
    values = []
    for part in parts:
        if part[:2].lower() == "0x":
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise ValueError(host)
    number = last
    for index, value in enumerate(head):
        number += value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def _literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, if it is one; ``ValueError`` if it is a broken number."""
    if ":" in host:
        return ipaddress.IPv6Address(host)
    if _numeric_host(host):
        return _ipv4_from_numbers(host)
    return None


def _where(scheme: str, host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" if port is None else f"{scheme}://{shown}:{port}"


def where(url: httpx.URL) -> str:
    """``scheme://host:port`` of ``url`` for messages: an IPv6 host in brackets, the port unless
    it is the scheme's default (which httpx drops, written or not). Never the path or query: they
    may carry secrets."""
    return _where(url.scheme, url.host, url.port)


def _quoted(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "\u2026")


_NOT_ADMITTED = " (not admitted by the fetch allowlist)"


def _refused(url: httpx.URL, why: str, reason: str) -> FetchRefusedError:
    return FetchRefusedError(f"{where(url)}: {why}", reason=reason)


def _address_refused(shown: str, host: str, ip: IPAddress, why: str) -> FetchRefusedError:
    """The one refusal of an address: ``scheme://host:port: HOST is IP, a loopback address (not
    admitted ...)`` for an IPv4 address spelled otherwise (``0177.0.0.1``, ``2130706433``), else
    ``HOST is a loopback address``."""
    plain = host == str(ip) or ":" in host  # IPv6: the same address, whichever way written
    spelled = f"{host} is {why}" if plain else f"{host} is {ip}, {why}"
    return FetchRefusedError(f"{shown}: {spelled}{_NOT_ADMITTED}", reason="address")


def _invalid(url: str | httpx.URL, exc: Exception, policy: FetchPolicy) -> FetchRefusedError:
    # httpx refuses some numeric spellings (0177.0.0.1, 127.000.000.001) outright: refused in the
    # same words as any other address, saying what they spell.
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    try:
        port = parts.port if parts is not None else None
    except ValueError:  # the port is what is wrong: the message names it
        port = None
    shown = _where(parts.scheme, host, port) if parts is not None and parts.scheme and host else ""
    try:
        literal = _literal(host)
    except ValueError:
        literal = None
    reason = refusal(literal) if literal is not None else None
    if literal is not None and reason is not None:
        shown = shown or f"//{host}"  # no scheme: the host alone
        if not policy.allowlist.admits_address(literal):
            return _address_refused(shown, host, literal, reason)
        return FetchRefusedError(  # admitted, but the spelling cannot be connected to as written
            f"{shown}: {host} is {literal} written in a form URLs do not take: write {literal}",
            reason="address",
        )
    prefix = f"{shown}: " if shown else ""
    return FetchRefusedError(f"{prefix}not a valid URL ({exc})", reason="invalid-url")


def check_target(url: str | httpx.URL, policy: FetchPolicy) -> Target:
    """The guard: ``url`` checked, its host resolved once, every address checked (module
    docstring); the address to connect to. No connection is made here.

    Raises :class:`~facefaas.errors.FetchRefusedError` (422) or, when the name does not
    resolve, :class:`~facefaas.errors.UpstreamError` (502, reason ``dns``).
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise _invalid(url, exc, policy) from None
    if not parsed.scheme:
        raise FetchRefusedError(
            f"{_quoted(str(url))} is not an absolute http or https URL", reason="scheme"
        )
    if parsed.scheme not in ("http", "https"):
        raise FetchRefusedError(
            f"{parsed.scheme}: URLs are not fetched, only http and https", reason="scheme"
        )
    if parsed.userinfo:
        raise _refused(parsed, "credentials in the URL are not accepted", "credentials")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise _refused(parsed, "the URL has no host", "invalid-url")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        literal = _literal(host)
    except ValueError:
        raise _refused(parsed, "the host is not a valid address", "invalid-host") from None
    allow = policy.allowlist
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            answers = policy.resolver(host, port)
            addresses = [ipaddress.ip_address(a) for a in answers]
        except (OSError, UnicodeError, ValueError) as exc:
            raise UpstreamError(
                f"{where(parsed)}: {host} does not resolve ({exc})", reason="dns"
            ) from None
        if not addresses:
            raise UpstreamError(f"{where(parsed)}: {host} has no address", reason="dns")
        if allow.admits_name(host):
            return Target(parsed, str(addresses[0]))
    for ip in addresses:
        reason = refusal(ip)
        if reason is not None and not allow.admits_address(ip):
            if literal is not None:
                raise _address_refused(where(parsed), host, ip, reason)
            why = f"{host} resolves to {ip}, {reason}{_NOT_ADMITTED}"
            raise _refused(parsed, why, "address")
    return Target(parsed, str(addresses[0]))
