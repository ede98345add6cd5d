"""The engines a model can run in, and the arithmetic each offers: the one list HOOK_ENGINE's
and HOOK_PRECISION's choices and help (hook.config.settings) and hook.detect.engines' dispatch
come from. Light: naming an engine loads none of them.

Adding an engine: an entry here, its class in hook.detect.engines (the `Engine` protocol) under
the same name in `engines.KINDS`; the settings, their check and docs/configuration.md follow.
"""

from __future__ import annotations

from dataclasses import dataclass

PRECISIONS = ("f32", "bf16", "int8")  # what HOOK_PRECISION may name, beside auto
DEVICES = ("cpu", "cuda", "auto")  # what HOOK_DEVICE may name
# how a model runs unless told otherwise: HOOK_ENGINE's, HOOK_PRECISION's and HOOK_DEVICE's
# defaults, and a detector's built by hand
DEFAULT_ENGINE, DEFAULT_PRECISION, DEFAULT_DEVICE = "onnxruntime", "f32", "cpu"


@dataclass(frozen=True)
class EngineInfo:
    """One engine: its HOOK_ENGINE name, what the settings' help says of it, what it runs."""

    name: str
    about: str
    precisions: tuple[str, ...]


ENGINES = {
    info.name: info
    for info in (
        EngineInfo("onnxruntime", "f32 or int8", ("f32", "int8")),
        EngineInfo(
            "openvino",
            "its CPU runtime, f32, bf16 or int8; its GPU with HOOK_DEVICE=auto when one is present",
            ("f32", "bf16", "int8"),
        ),
    )
}


def runs(engine: str, precision: str) -> bool:
    """Whether `engine` runs models at `precision`."""
    return precision in ENGINES[engine].precisions


def engines_running(precision: str) -> list[str]:
    """The engines that run `precision`, for an error that says what to choose instead."""
    return [name for name, info in ENGINES.items() if precision in info.precisions]
