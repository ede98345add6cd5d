"""The callback allow-list: names with subdomains, exact IPs, nothing else."""

from __future__ import annotations

import re

import pytest

from hook.callbacks.hosts import HostAllowList, allowing_only
from hook.errors import Invalid

DEFAULT = HostAllowList(("camio.com",))


@pytest.mark.parametrize("host", ["camio.com", "www.camio.com", "a.b.camio.com", "CAMIO.COM."])
def test_names_and_their_subdomains_are_allowed(host: str) -> None:
    assert DEFAULT.allows(host)


@pytest.mark.parametrize(
    "host",
    [
        "evilcamio.com",
        "camio.com.evil.net",
        "127.0.0.1",
        "localhost",
        "169.254.169.254",
        "::1",
        "10.0.0.8",
        "com",
    ],
)
def test_everything_else_is_refused(host: str) -> None:
    assert not DEFAULT.allows(host)


def test_ip_literals_only_when_listed_exactly() -> None:
    hosts = HostAllowList(("127.0.0.1", "[::1]", "camio.com"))
    assert hosts.allows("127.0.0.1") and hosts.allows("::1")
    assert not hosts.allows("127.0.0.2")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://www.camio.com/x", "http or https"),
        ("https:///nohost", "no host"),
        ("https://user:pw@www.camio.com/", "credentials"),
        ("https://www.camio.com:99999/", "not a valid URL"),
        ("http://127.0.0.1:8080/cb", "'127.0.0.1' is not allowed"),
        ("http://169.254.169.254/latest/meta-data", "not allowed"),
        (42, "non-empty string"),
        ("", "non-empty string"),
    ],
)
def test_check_url_names_the_problem(url: object, words: str) -> None:
    with pytest.raises(Invalid, match="callback_url") as info:
        DEFAULT.check_url(url)
    assert words in str(info.value)


def test_check_url_accepts_camio() -> None:
    assert DEFAULT.check_url("https://www.camio.com/api/cb?x=1").hostname == "www.camio.com"


def test_an_entry_with_a_port_allows_that_port_only() -> None:
    hosts = HostAllowList(("camio.com", "127.0.0.1:8101", "[::1]:8102", "cb.example.org:8443"))
    assert hosts.check_url("http://127.0.0.1:8101/cb").port == 8101
    assert hosts.check_url("http://[::1]:8102/cb").port == 8102
    assert hosts.check_url("https://cb.example.org:8443/x").port == 8443
    for url in (
        "http://127.0.0.1:8102/cb",
        "http://127.0.0.1/cb",
        "http://[::1]:8101/",
        "https://cb.example.org/x",
        "https://a.cb.example.org:9000/",
    ):
        with pytest.raises(Invalid, match="is not allowed"):
            hosts.check_url(url)
    assert hosts.check_url("https://www.camio.com:8443/").hostname == "www.camio.com"
    assert hosts.lists_exactly("127.0.0.1", 8101) and not hosts.lists_exactly("127.0.0.1", 22)


def test_a_refusal_says_whether_the_host_or_the_port_is_the_problem_and_what_to_add() -> None:
    hosts = HostAllowList(("camio.com", "127.0.0.1:8101", "127.0.0.1:8103", "[::1]:8102"))
    with pytest.raises(Invalid) as port:
        hosts.check_url("http://127.0.0.1:9000/cb")
    assert str(port.value) == (
        "callback_url port 9000 is not allowed for host '127.0.0.1': HOOK_CALLBACK_HOSTS "
        "(camio.com, 127.0.0.1:8101, 127.0.0.1:8103, [::1]:8102) allows it on port 8101 or "
        "8103 only; add 127.0.0.1:9000 to HOOK_CALLBACK_HOSTS to allow this port too"
    )
    with pytest.raises(Invalid, match=r"add \[::1\]:80 to HOOK_CALLBACK_HOSTS to allow this"):
        hosts.check_url("http://[::1]/cb")
    with pytest.raises(Invalid) as host:
        hosts.check_url("https://hooks.example.org/x")
    assert str(host.value).endswith(
        "host 'hooks.example.org' is not allowed (HOOK_CALLBACK_HOSTS: camio.com, "
        "127.0.0.1:8101, 127.0.0.1:8103, [::1]:8102); add hooks.example.org:443 to "
        "HOOK_CALLBACK_HOSTS to allow it (or hooks.example.org for any port)"
    )


def test_an_ip_network_allows_its_addresses_and_no_names() -> None:
    hosts = HostAllowList(("10.1.0.0/16", "fd00::/8"))
    assert hosts.allows("10.1.200.3", 80) and hosts.allows("fd12::1", 443)
    assert not hosts.allows("10.2.0.1", 80) and not hosts.allows("10.1.0.0.example.com", 80)
    assert hosts.lists_exactly("10.1.2.3", 80)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("http://camio.com", "without scheme or path"),
        ("*.camio.com", "no wildcards needed: camio.com already allows its subdomains"),
        ("127.0.0.1:99999", "port must be a number from 1 to 65535"),
        ("camio.com:http", "port must be a number"),
        ("10.1.0.0/40", "not an IP network"),
        ("[::1]8101", "write an IPv6 address with a port as"),
        ("bad_host!", "not a host name, an IP address or an IP network"),
    ],
)
def test_an_entry_that_could_never_match_is_refused(entry: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        HostAllowList((entry,))


def test_a_trailing_dot_ip_is_refused_at_ingest_a_trailing_dot_name_is_the_name() -> None:
    hosts = HostAllowList(("127.0.0.1", "camio.com"))
    with pytest.raises(Invalid, match="not a valid host name"):
        hosts.check_url("http://127.0.0.1./cb")
    assert hosts.check_url("https://www.camio.com./cb").hostname == "www.camio.com."


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://ops.example.com/r?t=1", "ops.example.com", 443),
        ("http://10.1.2.3:9000/r", "10.1.2.3", 9000),
        ("http://[::1]:8101/r", "::1", 8101),
    ],
)
def test_an_operator_url_allows_its_own_host_and_port_exactly(
    url: str, host: str, port: int
) -> None:
    only = allowing_only(url)
    assert only.lists_exactly(host, port)  # trusted as set: no public-address check
    assert not only.allows(host, port + 1) and not only.allows("camio.com", 443)
