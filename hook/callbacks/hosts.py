"""Callback host allow-list: labels go only to hosts the operator named, never into the LAN."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from hook.errors import Invalid

_UNSAFE = re.compile(r"[\\\s\x00-\x1f\x7f]")
_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.?")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Entry:
    """One HOOK_CALLBACK_HOSTS entry: a name (with its subdomains), an IP, or an IP network,
    optionally narrowed to one port."""

    name: str | None = None
    network: Network | None = None  # an IP address is a network of one
    port: int | None = None

    def matches(self, host: str, port: int | None) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            return _is_ip(host) and ipaddress.ip_address(host) in self.network
        return not _is_ip(host) and (host == self.name or host.endswith(f".{self.name}"))

    def is_exactly(self, host: str) -> bool:
        """`host` is this entry itself, not a subdomain: trusted as it is, however it resolves."""
        return self.network is not None or host == self.name


def parse_entry(raw: str) -> Entry:
    """`camio.com`, `host:8101`, `127.0.0.1`, `127.0.0.1:8101`, `[::1]:8101`, `10.1.0.0/16`.

    ValueError naming the entry for anything else, including what could never match.
    """
    text = raw.strip().lower()
    if "://" in text or text.startswith("/"):
        raise ValueError(f"{raw!r}: give the host alone, without scheme or path (e.g. camio.com)")
    if text.startswith("*."):
        raise ValueError(f"{raw!r}: no wildcards needed: {text[2:]} already allows its subdomains")
    host, port = _split_port(text, raw)
    if "/" in host:
        try:
            return Entry(network=ipaddress.ip_network(host, strict=False), port=port)
        except ValueError:
            raise ValueError(f"{raw!r} is not an IP network such as 10.1.0.0/16") from None
    if _is_ip(host):
        return Entry(network=ipaddress.ip_network(host), port=port)
    name = host.removesuffix(".")
    if not _HOST_NAME.fullmatch(name) or _is_ip(name):
        raise ValueError(f"{raw!r} is not a host name, an IP address or an IP network")
    return Entry(name=name, port=port)


def _split_port(text: str, raw: str) -> tuple[str, int | None]:
    if text.startswith("["):  # [v6] or [v6]:port
        inside, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{raw!r}: write an IPv6 address with a port as [::1]:8101")
        return inside, _port(rest[1:], raw) if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _port(port, raw)
    return text, None  # a name, an IPv4 address, or a bare IPv6 address


def _port(text: str, raw: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{raw!r}: the port must be a number from 1 to 65535")
    return int(text)


@dataclass(frozen=True)
class HostAllowList:
    """Host names (each also allowing its subdomains), IP addresses and networks, with ports.

    An IP literal in a callback URL is allowed only when an IP entry covers it, so a default
    list of public names can never reach 127.0.0.1, 10.x or a cloud metadata address. An entry
    with a port allows only that port: `127.0.0.1:8101` is one local service, not all of them.
    """

    entries: tuple[str, ...]
    parsed: tuple[Entry, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cleaned = tuple(e.strip() for e in self.entries if e.strip())
        object.__setattr__(self, "entries", cleaned)
        object.__setattr__(self, "parsed", tuple(parse_entry(e) for e in cleaned))

    def allows(self, host: str, port: int | None = None) -> bool:
        """Is `host` (on `port`; None: an entry without a port) an allowed destination?"""
        host = _normal(host)
        return any(entry.matches(host, port) for entry in self.parsed)

    def lists_exactly(self, host: str, port: int | None = None) -> bool:
        """True if an entry names `host` itself (not merely a parent domain of it)."""
        host = _normal(host)
        return any(e.matches(host, port) and e.is_exactly(host) for e in self.parsed)

    def check_url(self, url: object, *, field: str = "callback_url") -> SplitResult:
        """Return the parsed URL if it is http(s) to an allowed host; else Invalid naming why."""
        if not isinstance(url, str) or not url:
            raise Invalid(f"{field} must be a non-empty string", field=field)
        if _UNSAFE.search(url):  # parsers disagree on these (a backslash ends urllib3's host)
            raise Invalid(f"{field} contains a backslash, space or control character", field=field)
        try:
            parts = urlsplit(url)
            if parts.port == 0:  # .port itself raises ValueError on a malformed port
                raise ValueError("port 0")
        except ValueError:
            raise Invalid(f"{field} is not a valid URL: {url[:200]!r}", field=field) from None
        if parts.scheme not in ("http", "https"):
            raise Invalid(f"{field} must use http or https, not {parts.scheme!r}", field=field)
        host = parts.hostname or ""
        if not host:
            raise Invalid(f"{field} has no host: {url[:200]!r}", field=field)
        if not (_is_ip(host) or _HOST_NAME.fullmatch(host)) or _is_ip(
            host.removesuffix(".")
        ) != _is_ip(host):
            raise Invalid(f"{field} host {host[:100]!r} is not a valid host name", field=field)
        if parts.username or parts.password:
            raise Invalid(f"{field} must not carry credentials", field=field)
        if not self.allows(host, port_of(parts)):
            raise Invalid(self.refusal(field, host, port_of(parts)), field=field)
        return parts

    def refusal(self, field: str, host: str, port: int) -> str:
        """Why `host`:`port` is refused, and the HOOK_CALLBACK_HOSTS entry that would allow it:
        when the host is listed with other ports, the port is what to change."""
        listed = ", ".join(self.entries) or "none"
        shown = _normal(host)
        entry = f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"
        ports = sorted({e.port for e in self.parsed if e.port and e.matches(shown, e.port)})
        if ports:
            only = " or ".join(str(p) for p in ports)
            return (
                f"{field} port {port} is not allowed for host {host!r}: HOOK_CALLBACK_HOSTS "
                f"({listed}) allows it on port {only} only; add {entry} to HOOK_CALLBACK_HOSTS "
                "to allow this port too"
            )
        return (
            f"{field} host {host!r} is not allowed (HOOK_CALLBACK_HOSTS: {listed}); add "
            f"{entry} to HOOK_CALLBACK_HOSTS to allow it (or {shown} for any port)"
        )


def port_of(parts: SplitResult) -> int:
    """The port a URL connects to: its own, or its scheme's."""
    return parts.port or (443 if parts.scheme == "https" else 80)


def _normal(host: str) -> str:
    host = host.lower().strip("[]")
    return host if _is_ip(host) else host.removesuffix(".")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def allowing_only(url: str) -> HostAllowList:
    """The allow-list of `url`'s own host and port, listed exactly: for the operator's own
    URLs (HOOK_FAILURE_URL), allowed by being configured, whatever address they resolve to.

    ValueError if `url` is not http(s) to a host (no credentials, nothing unsafe in it); its
    message never shows the URL.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", port_of(parts)
    except ValueError:
        raise ValueError("is not a valid URL") from None
    entry = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        only = HostAllowList((entry,))
    except ValueError:
        raise ValueError("has no valid host (an http or https URL is needed)") from None
    try:
        only.check_url(url, field="the URL")
    except Invalid as exc:  # the URL may hold a token: its messages never show it
        raise ValueError(str(exc).replace(f": {url[:200]!r}", "")) from None
    return only


def operator_url(raw: str) -> str:
    """HOOK_FAILURE_URL: the operator's own URL, checked for its form only (`allowing_only`),
    never against HOOK_CALLBACK_HOSTS; ValueError that never shows it."""
    url = raw.strip()
    allowing_only(url)
    return url
