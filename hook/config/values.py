"""Setting values: one environment value each, parsed or refused with why (hook.config.settings).

Each parser takes the raw text and returns the typed value, or raises ValueError saying what
the value must be; hook.config.settings adds the variable's name. Never the value itself for
secrets.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path

from hook.callbacks.hosts import parse_entry

MAKE_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
API_KEY_PATTERN = re.compile(r"[A-Za-z0-9._~-]{16,256}")


def integer(raw: str) -> int:
    return int(raw.strip().replace("_", ""))


def positive_int(raw: str) -> int:
    value = integer(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def positive_float(raw: str) -> float:
    value = float(raw)
    if not 0 < value < float("inf"):
        raise ValueError("must be a positive number")
    return value


def non_negative_int(raw: str) -> int:
    value = integer(raw)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def non_negative_float(raw: str) -> float:
    value = float(raw)
    if not 0 <= value < float("inf"):
        raise ValueError("must be 0 or a positive number")
    return value


def fraction(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 1:
        raise ValueError("must be a number from 0 to 1")
    return value


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def csv_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in raw.split(",") if part.strip())


def callback_hosts(raw: str) -> tuple[str, ...]:
    entries = csv_list(raw)
    for entry in entries:
        parse_entry(entry)  # ValueError naming the entry: one that can never match is refused
    return entries


def a_path(raw: str) -> Path:
    return Path(raw.strip()).expanduser()


def paths(raw: str) -> tuple[Path, ...]:
    paths = tuple(Path(part.strip()).expanduser() for part in raw.split(",") if part.strip())
    if not paths:
        raise ValueError("must name at least one model file")
    return paths


def weights(raw: str) -> tuple[float, ...]:
    return _per_model(raw, positive_float, "positive numbers")


def fractions(raw: str) -> tuple[float, ...]:
    """Numbers from 0 to 1, one per model; `none` for none."""
    if raw.strip().lower() == "none":
        return ()
    return _per_model(raw, fraction, "numbers from 0 to 1")


def _per_model(raw: str, parse: Callable[[str], float], what: str) -> tuple[float, ...]:
    parts = raw.split(",")
    if any(not part.strip() for part in parts):
        raise ValueError(f"must be {what}, comma-separated, one per model")
    return tuple(parse(part) for part in parts)


def mongo_uri(raw: str) -> str | None:
    uri = raw.strip()
    if uri and not uri.startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError("must start with mongodb:// or mongodb+srv://")
    return uri or None


def db_name(raw: str) -> str:
    name = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,63}", name):
        raise ValueError("must be 1 to 63 characters from A-Z a-z 0-9 _ -")
    return name


def log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def optional_path(raw: str) -> Path | None:
    return Path(raw.strip()).expanduser() if raw.strip() else None


def flag(raw: str) -> bool:
    return choice("0", "1")(raw) == "1"


BIND_FORMS = "host:port (127.0.0.1:8000, 0.0.0.0:8000, [::]:8000) or unix:/absolute/path"
HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")


def bind(raw: str) -> str:
    """gunicorn's bind forms that `run` can also reach to see that the web answers."""
    bind = raw.strip()
    if bind.startswith("unix:"):
        if not bind.startswith("unix:/"):
            raise ValueError(f"a unix socket needs an absolute path; must be {BIND_FORMS}")
        return bind
    if "://" in bind:
        raise ValueError(f"no {bind.split('://')[0]}:// here; must be {BIND_FORMS}")
    host, colon, port = bind.rpartition(":")
    if not colon or not host:
        raise ValueError(f"must be {BIND_FORMS}")
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise ValueError(f"the port must be a number from 1 to 65535; must be {BIND_FORMS}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{host} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError("an IPv6 address goes in brackets: [::1]:8000")
    elif not HOSTNAME.fullmatch(host):
        raise ValueError(f"{host!r} is not a host name or IP address; must be {BIND_FORMS}")
    return bind


def view_keys(raw: str) -> tuple[str, ...]:
    """HOOK_VIEW_KEY: comma-separated keys, each as HOOK_API_KEY's form (ValueError by position)."""
    keys = []
    for n, part in enumerate(raw.split(","), start=1):
        if part.strip():
            try:
                keys.append(api_key(part))
            except ValueError as exc:
                raise ValueError(f"key {n} {exc}") from None
    return tuple(keys)


def api_key(raw: str) -> str:
    key = raw.strip()
    if not API_KEY_PATTERN.fullmatch(key):
        raise ValueError(
            "must be 16 to 256 characters from A-Z a-z 0-9 . _ ~ - (it is a URL path segment); "
            f"make one with: {MAKE_KEY}"
        )
    return key
