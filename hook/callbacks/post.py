"""Delivering labels to Camio's callback_url: one POST, judged as delivered, retry or give up.

The host is checked against the allow-list again at delivery time, and the addresses it
resolves to must be public unless the host is listed exactly (no SSRF into the local network
through a wildcard domain). Redirects are followed only to the same scheme, host and port. The
whole attempt, from connect to the last byte of the answer (status line and headers included),
is bounded by the timeout, and only the start of an answer is read.
"""

from __future__ import annotations

import email.utils
import http.cookiejar
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from http.client import HTTPException, RemoteDisconnected
from types import MappingProxyType
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from hook.callbacks.deadline import bounded_session, watching
from hook.callbacks.hosts import HostAllowList, port_of
from hook.errors import Invalid

MAX_REDIRECTS = 3
KEEP_BODY = 500  # characters of the callback's answer kept with a failed task
READ_LIMIT = 64 * 1024  # bytes of an answer read at most
RETRY_STATUS = {408, 425, 429}  # 4xx that mean "later", not "never"
NO_HEADERS: Mapping[str, str] = MappingProxyType({})
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Verdict(StrEnum):
    """What a delivery attempt means for the task."""

    DELIVERED = "delivered"  # the callback took the labels
    RETRY = "retry"  # not now (timeout, unreachable, 5xx, 408/425/429): try again later
    REFUSED = "refused"  # never (4xx, a URL or redirect we will not follow): fail the task


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt came to."""

    verdict: Verdict
    reason: str  # for logs and the task's last_error: status and the start of the answer
    retry_after: float | None = None  # seconds the callback asked us to wait (429, 503)
    elapsed: float = 0.0  # seconds the whole attempt took, redirects included (set by post_labels)


@dataclass(frozen=True)
class Redirect:
    """A same-origin redirect to follow: the absolute URL to POST to next."""

    url: str


def session() -> requests.Session:
    """A session for callbacks: every exchange bounded whole (hook.callbacks.deadline), no
    proxies or .netrc from the environment, no cookies kept."""
    client = bounded_session()
    client.trust_env = False
    client.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return client


def post_labels(
    http: requests.Session,
    url: str,
    body: str,
    *,
    hosts: HostAllowList,
    timeout: float,
    headers: Mapping[str, str] = NO_HEADERS,
) -> Outcome:
    """POST the labels with `headers` (hook.callbacks.outbound's), the same ones again on a
    redirect; never raises for network or HTTP trouble, only reports it."""
    started = time.monotonic()
    deadline = started + timeout
    for _ in range(MAX_REDIRECTS + 1):
        result = check_destination(url, hosts) or _attempt(
            http, url, body, sent=headers, deadline=deadline, timeout=timeout
        )
        if isinstance(result, Outcome):
            return replace(result, elapsed=time.monotonic() - started)
        url = result.url  # a redirect to the same origin: check it and go again
    return Outcome(
        Verdict.REFUSED,
        f"callback redirected more than {MAX_REDIRECTS} times",
        elapsed=time.monotonic() - started,
    )


def _attempt(
    http: requests.Session,
    url: str,
    body: str,
    *,
    sent: Mapping[str, str],
    deadline: float,
    timeout: float,
) -> Outcome | Redirect:
    """One POST: its outcome, or a same-origin redirect to follow."""
    try:
        status, headers, text = _post(http, url, body, sent, deadline)
    except (requests.Timeout, TimeoutError):
        return Outcome(Verdict.RETRY, f"callback timed out after {timeout:g} s")
    except requests.exceptions.InvalidURL as exc:
        return Outcome(Verdict.REFUSED, f"callback URL is not usable: {exc}")
    except requests.RequestException as exc:
        return Outcome(Verdict.RETRY, f"callback unreachable: {unreachable(exc, url)}")
    except ValueError as exc:  # requests parses a redirect's Location even when not following
        why = "callback redirected to a malformed Location, not followed"
        return Outcome(Verdict.REFUSED, f"{why}: {exc}")
    if 300 <= status < 400 and "Location" in headers:
        return _redirect(url, status, headers["Location"])
    return judge(status, text, retry_after(headers.get("Retry-After"), time.time()))


def _redirect(url: str, status: int, location: str) -> Outcome | Redirect:
    """The same-origin redirect to follow, or why a redirect is refused for good."""
    try:
        target = urljoin(url, location)
        same = origin(target) == origin(url)
    except ValueError:  # a malformed host or port in Location: urllib refuses to parse it
        shown = location[:200].encode("unicode_escape").decode("ascii")
        why = f"callback redirected ({status}) to a malformed Location, not followed"
        return Outcome(Verdict.REFUSED, f"{why}: {shown}")
    if not same:
        why = f"callback redirected ({status}) to another origin, not followed"
        return Outcome(Verdict.REFUSED, f"{why}: {target[:200]}")
    return Redirect(target)


def _post(
    http: requests.Session, url: str, body: str, sent: Mapping[str, str], deadline: float
) -> tuple[int, dict[str, str], str]:
    """One POST within `deadline`: the status, headers and the start of the answer.

    The body goes as its UTF-8 bytes, the very bytes a signature in `sent` is made over.
    """
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    with watching(deadline) as watch:
        try:
            answer = _exchange(http, url, body, sent, deadline)
        except Exception:
            if watch.fired:  # cut at the deadline: whatever broke, it is a timeout
                raise TimeoutError from None
            raise
        if watch.fired:  # the answer was cut short at the deadline
            raise TimeoutError
        return answer


def _exchange(
    http: requests.Session,
    url: str,
    body: str,
    sent: Mapping[str, str],
    deadline: float,
) -> tuple[int, dict[str, str], str]:
    """The POST and the start of its answer, each read checked against `deadline`."""
    left = max(0.001, deadline - time.monotonic())
    with http.post(
        url,
        data=body.encode(),
        timeout=left,
        allow_redirects=False,
        stream=True,
        headers={**sent, "Content-Type": "application/json"},
    ) as answer:
        data, cut = b"", ""
        try:
            # read1: whatever has arrived, so an answer trickling in cannot outlast the deadline
            while len(data) < READ_LIMIT and (chunk := answer.raw.read1(4096, decode_content=True)):
                data += chunk
                if time.monotonic() > deadline:
                    raise TimeoutError
        except urllib3.exceptions.ReadTimeoutError:
            raise TimeoutError from None
        except (urllib3.exceptions.HTTPError, HTTPException, ConnectionError) as exc:
            # the status line came whole, so it stands; only the text for the logs is short
            cut = f" [answer cut short: {type(exc).__name__}]"
        return answer.status_code, dict(answer.headers), answer_text(data, answer.encoding) + cut


def answer_text(data: bytes, charset: str | None) -> str:
    """An answer's start as text for the reason and the logs: in its declared charset where
    Python has a text codec of that name, else UTF-8. Never an error: the verdict on a 200 must
    not hang on the label a receiver puts on its answer (x-no-such-charset, rot13, idna)."""
    try:
        return data.decode(charset or "utf-8", "replace")
    except (LookupError, UnicodeError, TypeError):
        return data.decode("utf-8", "replace")


# What a connection's root cause says, in the order tried (RemoteDisconnected is a reset too).
UNREACHABLE = (
    (RemoteDisconnected, "{where} closed the connection without answering"),
    (ConnectionRefusedError, "connection refused by {where}"),
    (ConnectionResetError, "connection reset by {where}"),
    (socket.gaierror, "{host} does not resolve"),
)


def unreachable(exc: BaseException, url: str) -> str:
    """Why the POST never got an answer, in a few words (requests' own text runs to 400).

    "connection refused by 127.0.0.1:8101": the root cause that requests wraps in urllib3's
    MaxRetryError, which wraps NewConnectionError, which wraps the socket's error.
    """
    root = _root_cause(exc)
    _, host, port = origin(url)
    where = f"[{host}]:{port}" if host and ":" in host else f"{host}:{port}"
    for kind, saying in UNREACHABLE:
        if isinstance(root, kind):
            return saying.format(where=where, host=host)
    if isinstance(root, ssl.SSLError):
        why = (root.reason or type(root).__name__).replace("_", " ").lower()
        return f"TLS with {where} failed: {why}"
    said = root.strerror if isinstance(root, OSError) and root.strerror else type(root).__name__
    return f"{said.lower()} ({where})"


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception: through urllib3's `reason`, wrapped arguments, causes, contexts."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        reason = getattr(exc, "reason", None)
        wrapped = [arg for arg in exc.args if isinstance(arg, BaseException)]
        if isinstance(reason, BaseException):
            inner: BaseException | None = reason
        else:
            inner = wrapped[-1] if wrapped else exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def judge(status: int, text: str, wait: float | None = None) -> Outcome:
    """2xx delivered; 5xx, 408/425/429 and a lone 1xx retry; any other answer is permanent.

    A 1xx (102 Processing, 103 Early Hints) is an interim answer: Python's HTTP client stops
    at it, so the real one is unknown and the POST is tried again. `wait` (Retry-After) is
    passed on for 429 and 503.
    """
    shown = text[:KEEP_BODY].encode("unicode_escape").decode("ascii")  # a remote's text, logged
    reason = f"callback answered {status}: {shown}".rstrip(": ")
    if 200 <= status < 300:
        return Outcome(Verdict.DELIVERED, f"callback answered {status}")
    if status < 200:
        return Outcome(Verdict.RETRY, f"callback answered only an interim {status}; trying again")
    if status >= 500 or status in RETRY_STATUS:
        return Outcome(Verdict.RETRY, reason, wait if status in (429, 503) else None)
    return Outcome(Verdict.REFUSED, reason)


def retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from `now` (delta seconds or an HTTP date); None if absent/bad."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def check_destination(url: str, hosts: HostAllowList) -> Outcome | None:
    """None if labels may go to `url` now; else why not, refused for good or to retry later."""
    try:
        parts = hosts.check_url(url)
    except Invalid as exc:
        return Outcome(Verdict.REFUSED, str(exc))
    host = parts.hostname or ""
    if hosts.lists_exactly(host, port_of(parts)):
        return None
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:  # perhaps DNS trouble: refuse now, try again later
        return Outcome(Verdict.RETRY, f"callback host {host} does not resolve: {exc}")
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not is_public(address):
            return Outcome(
                Verdict.REFUSED,
                f"callback host {host} resolves to {address}, a non-public address; "
                "list the host exactly in HOOK_CALLBACK_HOSTS to allow it",
            )
    return None


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable, looking through IPv4-mapped and NAT64 IPv6 forms."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address in NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global


def origin(url: str) -> tuple[str, str | None, int]:
    """(scheme, host, port) of a URL: what "the same receiver" means. ValueError if malformed."""
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, port_of(parts)
