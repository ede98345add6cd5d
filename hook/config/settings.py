"""Settings: every knob of the server, read once from the environment at the edge.

The table (hook.config.table's `SPECS`) is the one place where names, defaults and meanings
live; this module turns the environment into typed values by it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hook.config.pair import default_sure, default_weights
from hook.config.table import SECRET_FIELDS, SPECS
from hook.config.values import MAKE_KEY
from hook.detect.thresholds import Thresholds
from hook.detect.tiling import Tiling
from hook.errors import ConfigError
from hook.retry import RetryPolicy


@dataclass(frozen=True)
class Settings:
    """All settings as typed values. Build with `from_env()`: defaults live in SPECS only."""

    api_key: str
    view_keys: tuple[str, ...]
    mongo_uri: str | None
    mongo_db: str
    mongo_timeout_ms: int
    data_dir: Path
    embedded_port: int
    bind: str
    tls_cert: Path | None
    tls_key: Path | None
    web_workers: int
    workers: int
    lease_seconds: float
    max_attempts: int
    retry_base_seconds: float
    callback_timeout: float
    failure_url: str | None
    failure_to_callback: bool
    report_attempts: int
    retention_hours: float
    keep_pictures_hours: float
    callback_hosts: tuple[str, ...]
    signing_secrets: tuple[str, ...] | None
    callback_headers: dict[str, str] | None
    max_body: int
    body_timeout: float
    max_images: int
    max_image_pixels: int
    max_image_bytes: int
    models: tuple[Path, ...]
    model_weights: tuple[float, ...]
    model_sure: tuple[float, ...]
    min_score: float
    label_scores: dict[str, float]
    tiles: Tiling
    tile_score: float
    iou: float
    classes: tuple[str, ...]
    rules: Path | None
    device: str
    threads: int
    lanes: int
    engine: str
    precision: str
    batch_images: int
    log_level: str

    @property
    def thresholds(self) -> Thresholds:
        """HOOK_MIN_SCORE for every label, but those HOOK_LABEL_SCORES names."""
        return Thresholds(self.min_score, self.label_scores)

    @property
    def retry_policy(self) -> RetryPolicy:
        """How deliveries are retried: HOOK_RETRY_BASE_SECONDS, HOOK_MAX_ATTEMPTS."""
        return RetryPolicy(self.retry_base_seconds, self.max_attempts)

    @property
    def report_policy(self) -> RetryPolicy:
        """How failure reports are retried: the same backoff, HOOK_REPORT_ATTEMPTS."""
        return RetryPolicy(self.retry_base_seconds, self.report_attempts)

    def __repr__(self) -> str:  # the key must never reach a log line
        shown = ", ".join(
            f"{f.name}={'<hidden>' if f.name in SECRET_FIELDS else repr(getattr(self, f.name))}"
            for f in fields(self)
        )
        return f"Settings({shown})"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, require_api_key: bool = True
    ) -> Settings:
        """Parse every HOOK_* variable; a missing or malformed one is a ConfigError naming it.

        Tools that never serve the hook (`status`) pass require_api_key=False.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in SPECS:
            raw = env.get(spec.env)
            if raw is None or not raw.strip():  # set but blank counts as unset
                raw = spec.default
            if raw is None and spec.field == "api_key" and not require_api_key:
                values["api_key"] = ""
                continue
            if raw is None:
                if spec.field == "api_key":
                    raise ConfigError(
                        f"{spec.env} is not set: it is the secret in the hook URL. "
                        f"Make one with: {MAKE_KEY}"
                    )
                values[spec.field] = None
                continue
            try:
                values[spec.field] = spec.parse(raw)
            except ValueError as exc:
                shown = "<hidden>" if spec.hidden else repr(raw)
                raise ConfigError(f"{spec.env}={shown} is invalid: {exc}") from None
        _complete(values)
        return cls(**values)


def _complete(values: dict[str, Any]) -> None:
    """The defaults that depend on other settings, and the settings that must agree."""
    if values["model_sure"] is None:
        values["model_sure"] = default_sure(values["models"])
    elif values["model_sure"] and (
        len(values["model_sure"]) != len(values["models"]) or len(values["models"]) == 1
    ):
        raise ConfigError(
            f"HOOK_MODEL_SURE has {len(values['model_sure'])} scores for "
            f"{len(values['models'])} models: give one per model of several, or none"
        )
    if values["model_weights"] is None:
        values["model_weights"] = default_weights(values["models"])
    elif len(values["models"]) == 1:
        raise ConfigError("HOOK_MODEL_WEIGHTS is for several models; HOOK_MODEL names one")
    if values["model_weights"] and len(values["model_weights"]) != len(values["models"]):
        raise ConfigError(
            f"HOOK_MODEL_WEIGHTS has {len(values['model_weights'])} weights for "
            f"{len(values['models'])} models: give one per model, or none"
        )
    if values["api_key"] and values["api_key"] in values["view_keys"]:
        raise ConfigError(
            "HOOK_VIEW_KEY names HOOK_API_KEY: a view key must differ from the key that "
            "enqueues events (make one with: " + MAKE_KEY + ")"
        )
    if (values["tls_cert"] is None) != (values["tls_key"] is None):
        raise ConfigError("HOOK_TLS_CERT and HOOK_TLS_KEY go together: set both or neither")
