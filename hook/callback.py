"""Delivering labels to Camio's callback_url: one POST, judged as delivered, retry or give up.

The host is checked against the allow-list again at delivery time, and the addresses it
resolves to must be public unless the host is listed exactly (no SSRF into the local network
through a wildcard domain). Redirects are followed only to the same host.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from hook.errors import BadRequest
from hook.hosts import HostAllowList

MAX_REDIRECTS = 3
KEEP_BODY = 500  # characters of the callback's answer kept with a failed task
RETRY_STATUS = {408, 425, 429}  # 4xx that mean "later", not "never"


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt came to."""

    delivered: bool
    permanent: bool  # do not retry: the callback refused for good, or may never be called
    reason: str  # for logs and the task's last_error: status and the start of the answer


def post_labels(
    http: requests.Session, url: str, body: str, *, hosts: HostAllowList, timeout: float
) -> Outcome:
    """POST the labels; never raises for network or HTTP trouble, only reports it."""
    for _ in range(MAX_REDIRECTS + 1):
        refusal = check_destination(url, hosts)
        if refusal:
            return Outcome(False, True, refusal)
        try:
            answer = http.post(url, data=body, timeout=timeout, allow_redirects=False,
                               headers={"Content-Type": "application/json"})  # fmt: skip
        except requests.Timeout:
            return Outcome(False, False, f"callback timed out after {timeout:g} s")
        except requests.RequestException as exc:
            return Outcome(False, False, f"callback unreachable: {type(exc).__name__}: {exc}")
        if answer.is_redirect:
            target = urljoin(url, answer.headers.get("Location", ""))
            if urlsplit(target).hostname != urlsplit(url).hostname:
                why = f"callback redirected ({answer.status_code}) to another host, not followed"
                return Outcome(False, True, f"{why}: {target[:200]}")
            url = target
            continue
        return judge(answer)
    return Outcome(False, True, f"callback redirected more than {MAX_REDIRECTS} times")


def judge(answer: requests.Response) -> Outcome:
    """2xx delivered; 5xx and 408/425/429 retry; any other answer is permanent."""
    reason = f"callback answered {answer.status_code}: {answer.text[:KEEP_BODY]}".rstrip(": ")
    if 200 <= answer.status_code < 300:
        return Outcome(True, False, f"callback answered {answer.status_code}")
    retry = answer.status_code >= 500 or answer.status_code in RETRY_STATUS
    return Outcome(False, not retry, reason)


def check_destination(url: str, hosts: HostAllowList) -> str | None:
    """None if labels may go to `url`; else why not."""
    try:
        parts = hosts.check_url(url)
    except BadRequest as exc:
        return str(exc)
    host = parts.hostname or ""
    if hosts.lists_exactly(host):
        return None
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return None  # resolution failed: the POST will fail as unreachable and be retried
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return (f"callback host {host} resolves to {address}, a non-public address; "
                    "list the host exactly in HOOK_CALLBACK_HOSTS to allow it")  # fmt: skip
    return None
