"""Camio's hooks API (`register`, `hooks`, `unregister`): the hook that sends events here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from hook.callbacks.deadline import bounded_session, watching
from hook.errors import CamioError

DEFAULT_API = "https://www.camio.com/api"


def camera_query(camera: str) -> str:
    """parsed_query matching one camera by name, quoted the way Camio's Python-like syntax reads."""
    escaped = camera.replace("\\", "\\\\").replace("'", "\\'")
    return f"camera == '{escaped}'"


@dataclass
class CamioClient:
    """A thin client of /users/me/hooks, authenticated with a developer OAuth token."""

    token: str
    api_url: str = DEFAULT_API
    timeout: float = 15.0
    http: requests.Session | None = None

    def __post_init__(self) -> None:
        if not self.token:
            raise CamioError(
                "no Camio token: set CAMIO_OAUTH_TOKEN or pass --token "
                "(make one at https://camio.com/settings/integrations#api)"
            )
        self.http = self.http or bounded_session()

    def register(self, callback_url: str, parsed_query: str) -> dict[str, Any]:
        body = {"callback_url": callback_url, "type": "query_match", "parsed_query": parsed_query}
        made = self._call("POST", "/users/me/hooks", json=body)
        if not isinstance(made, dict) or "id" not in made:
            raise CamioError(f"Camio answered the registration without a hook id: {made!r:.200}")
        return made

    def hooks(self) -> list[dict[str, Any]]:
        found = self._call("GET", "/users/me/hooks")
        return found if isinstance(found, list) else list(found.get("hooks", []))

    def unregister(self, hook_id: str) -> None:
        self._call("DELETE", f"/users/me/hooks/{quote(hook_id, safe='')}")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = self.api_url.rstrip("/") + path
        assert self.http is not None
        watch = None
        try:
            # the whole exchange within the timeout, a trickling answer included
            with watching(time.monotonic() + self.timeout) as watch:
                answer = self.http.request(
                    method,
                    url,
                    timeout=self.timeout,
                    allow_redirects=False,
                    headers={"Authorization": f"token {self.token}", "Accept": "application/json"},
                    **kwargs,
                )
        except requests.RequestException as exc:
            if (watch is not None and watch.fired) or isinstance(exc, requests.Timeout):
                raise CamioError(
                    f"Camio at {self.api_url} did not answer within {self.timeout:g} s"
                ) from None
            raise CamioError(
                f"cannot reach Camio at {self.api_url}: {type(exc).__name__}"
            ) from None
        if answer.is_redirect:
            raise CamioError(
                f"Camio redirected {method} {path} to "
                f"{answer.headers.get('Location', '?')}; check CAMIO_API_URL"
            )
        if not answer.ok:
            detail = " ".join(answer.text.split())[:200]
            raise CamioError(f"Camio answered {answer.status_code} to {method} {path}: {detail}")
        if not answer.content:
            return {}
        try:
            return answer.json()
        except ValueError:
            raise CamioError(f"Camio answered {method} {path} with something not JSON") from None
