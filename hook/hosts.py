"""Callback host allow-list: labels go only to hosts the operator named, never into the LAN."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from hook.errors import BadRequest

_UNSAFE = re.compile(r"[\\\s\x00-\x1f\x7f]")
_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.?")


@dataclass(frozen=True)
class HostAllowList:
    """Host names (each also allowing its subdomains) and exact IP addresses.

    An IP literal in a callback URL is allowed only when listed as such, so a default list of
    public names can never reach 127.0.0.1, 10.x or a cloud metadata address.
    """

    entries: tuple[str, ...]

    def __post_init__(self) -> None:
        cleaned = tuple(e.strip().lower().strip("[]").rstrip(".") for e in self.entries)
        object.__setattr__(self, "entries", tuple(e for e in cleaned if e))

    def allows(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if _is_ip(host):
            return any(
                _is_ip(entry) and ipaddress.ip_address(entry) == ipaddress.ip_address(host)
                for entry in self.entries
            )
        return any(
            not _is_ip(entry) and (host == entry or host.endswith("." + entry))
            for entry in self.entries
        )

    def lists_exactly(self, host: str) -> bool:
        """True if `host` itself is an entry (not merely a subdomain of one)."""
        host = host.lower().rstrip(".")
        if _is_ip(host):
            return self.allows(host)
        return host in self.entries

    def check_url(self, url: object, *, field: str = "callback_url") -> SplitResult:
        """Return the parsed URL if it is http(s) to an allowed host; else BadRequest naming why."""
        if not isinstance(url, str) or not url:
            raise BadRequest(f"{field} must be a non-empty string", field=field)
        if _UNSAFE.search(url):  # parsers disagree on these (a backslash ends urllib3's host)
            raise BadRequest(f"{field} contains a backslash, space or control character",
                             field=field)  # fmt: skip
        try:
            parts = urlsplit(url)
            if parts.port == 0:  # .port itself raises ValueError on a malformed port
                raise ValueError("port 0")
        except ValueError:
            raise BadRequest(f"{field} is not a valid URL: {url[:200]!r}", field=field) from None
        if parts.scheme not in ("http", "https"):
            raise BadRequest(f"{field} must use http or https, not {parts.scheme!r}", field=field)
        host = parts.hostname or ""
        if not host:
            raise BadRequest(f"{field} has no host: {url[:200]!r}", field=field)
        if not (_is_ip(host) or _HOST_NAME.fullmatch(host)):
            raise BadRequest(f"{field} host {host[:100]!r} is not a valid host name", field=field)
        if parts.username or parts.password:
            raise BadRequest(f"{field} must not carry credentials", field=field)
        if not self.allows(host):
            raise BadRequest(
                f"{field} host {host!r} is not allowed (HOOK_CALLBACK_HOSTS: "
                f"{', '.join(self.entries) or 'none'})",
                field=field,
            )
        return parts


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
