"""The callback allow-list: names with subdomains, exact IPs, nothing else."""

from __future__ import annotations

import pytest

from hook.errors import BadRequest
from hook.hosts import HostAllowList

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
    with pytest.raises(BadRequest, match="callback_url") as info:
        DEFAULT.check_url(url)
    assert words in str(info.value)


def test_check_url_accepts_camio() -> None:
    assert DEFAULT.check_url("https://www.camio.com/api/cb?x=1").hostname == "www.camio.com"
