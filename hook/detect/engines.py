"""Engines: what runs a detector's ONNX file, onnxruntime or OpenVINO, at f32, bf16 or int8.

The Detector reads its model's inputs, outputs and metadata from an Engine and runs it through
`run(output_names, feeds)`, onnxruntime's InferenceSession.run contract, so the choice of
engine (HOOK_ENGINE) and arithmetic (HOOK_PRECISION) changes nothing else. int8 loads the
model's static int8 build beside it (`<stem>.int8.onnx`, models/build.py int8); bf16 is
OpenVINO's CPU arithmetic on a CPU with AVX-512 BF16 or AMX. Each engine instance has its own
session or compiled model and infer request, and both release the GIL while they run, so
detector lanes in threads each run their own in parallel.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import onnxruntime as ort

from hook.detect.model_files import file_sha256, int8_path, read_stamp
from hook.detect.registry import (
    DEFAULT_DEVICE,
    DEFAULT_ENGINE,
    DEFAULT_PRECISION,
    ENGINES,
    PRECISIONS,
    engines_running,
    runs,
)
from hook.errors import ConfigError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import openvino as ov  # type: ignore[import-untyped]

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
OV_TYPES = {
    "f32": "tensor(float)",
    "f16": "tensor(float16)",
    "u8": "tensor(uint8)",
    "i64": "tensor(int64)",
    "i32": "tensor(int32)",
}
INT8_BUILD = ".venv/bin/python -m bench.photoset photos && .venv/bin/python models/build.py int8"


@dataclass(frozen=True)
class Port:
    """One model input as onnxruntime describes it: a symbolic dimension is a str."""

    name: str
    shape: tuple[int | str, ...]
    type: str  # "tensor(float)", "tensor(uint8)", ...


class Engine(Protocol):
    """A loaded model: its interface, its metadata, and inference."""

    inputs: tuple[Port, ...]
    outputs: tuple[str, ...]  # every output's name, in the model's order
    metadata: dict[str, str]  # the ONNX file's metadata_props
    description: str  # for the detector's log line: "openvino CPU bf16"

    def run(
        self, output_names: list[str] | None, feeds: dict[str, np.ndarray], *, release: bool = False
    ) -> list[Any]:
        """The outputs named (all, in model order, for None) for one batch of feeds; with
        `release`, the engine gives back the working memory it grew for this run once done."""
        ...


def chosen_device(device: str, engine: str) -> str:
    """HOOK_DEVICE=auto made concrete for onnxruntime: cuda when its CUDA provider is there,
    else cpu (the worker plans its lanes and batches by it). OpenVINO picks its own device."""
    if device == "auto" and engine == "onnxruntime":
        return "cuda" if PROVIDERS["cuda"] in ort.get_available_providers() else "cpu"
    return device


def chosen_precision(precision: str, models: Sequence[Path], device: str = DEFAULT_DEVICE) -> str:
    """HOOK_PRECISION=auto made concrete: int8 on a CPU when every model has its int8 build
    (it labels the accuracy benchmark's photos as f32 does in about half the time:
    docs/accuracy.md, "Engines and precision"), else f32. Any other value is as given."""
    if precision != "auto":
        return precision
    if device == "cuda":
        return "f32"
    if all(int8_path(model).is_file() for model in models):
        stale = [model.name for model in models if not made_from(model)]
        if not stale:
            return "int8"
        log.warning(
            "HOOK_PRECISION=auto: f32, as the int8 builds of %s were made from other "
            "models; rebuild them: %s",
            ", ".join(stale),
            INT8_BUILD,
        )
    else:
        log.info("HOOK_PRECISION=auto: f32, as the int8 builds are not made (%s)", INT8_BUILD)
    return "f32"


def made_from(model: Path) -> bool:
    """Was the int8 build beside `model` made from this very file (its stamp's `source`)?"""
    stamp = read_stamp(model)
    try:
        stat = model.stat()
    except OSError:
        return False
    return stamp is not None and stamp[1].get("source") == _sha256(
        model, stat.st_size, stat.st_mtime_ns
    )


@functools.lru_cache(maxsize=16)
def _sha256(model: Path, size: int, mtime_ns: int) -> str:
    """The file's sha256, once per version of it (every lane loads the same models)."""
    return file_sha256(model)


def weights_for(model: Path, precision: str) -> Path:
    """The file an engine loads: the model itself, or its int8 build (a ConfigError if absent)."""
    if precision != "int8":
        return model
    built = int8_path(model)
    if not built.is_file():
        raise ConfigError(
            f"HOOK_PRECISION=int8 needs {built}, the int8 build of {model.name}; build it in a "
            f"checkout with: {INT8_BUILD} (and copy it beside the model), or set "
            "HOOK_PRECISION=f32"
        )
    return built


def load(
    model: Path,
    *,
    engine: str = DEFAULT_ENGINE,
    precision: str = DEFAULT_PRECISION,
    device: str = DEFAULT_DEVICE,
    threads: int = 0,
) -> Engine:
    """The engine HOOK_ENGINE names for `model` at HOOK_PRECISION; ConfigError naming them."""
    if engine not in ENGINES:
        raise ConfigError(f"HOOK_ENGINE={engine} is unknown; choose {' or '.join(ENGINES)}")
    precision = chosen_precision(precision, [model], device)
    if precision not in PRECISIONS:
        raise ConfigError(f"HOOK_PRECISION={precision} is unknown; choose {', '.join(PRECISIONS)}")
    if not runs(engine, precision):
        raise ConfigError(
            f"HOOK_PRECISION={precision} is not {engine}'s: set "
            f"HOOK_ENGINE={' or '.join(engines_running(precision))} with it ({engine} runs "
            f"{' or '.join(ENGINES[engine].precisions)})"
        )
    return KINDS[engine](weights_for(model, precision), device, threads, precision)


class OnnxRuntime:
    """One onnxruntime InferenceSession (run() releases the GIL)."""

    def __init__(self, path: Path, device: str, threads: int, precision: str = "f32") -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        # No busy-waiting between operators: the worker decodes and delivers on the same cores
        # while the model runs, and spinning threads would take that CPU (bench/worker.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers(device))
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ConfigError(f"model {path} cannot be loaded by onnxruntime: {exc}") from None
        self.inputs = tuple(Port(i.name, tuple(i.shape), i.type) for i in self.session.get_inputs())
        self.outputs = tuple(o.name for o in self.session.get_outputs())
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        provider = self.session.get_providers()[0].removesuffix("ExecutionProvider")
        self.description = f"onnxruntime {provider} {precision}"

    def run(
        self, output_names: list[str] | None, feeds: dict[str, np.ndarray], *, release: bool = False
    ) -> list[Any]:
        """Copies of the outputs: onnxruntime's own are views on its arena, so a large event's
        outputs, held until every image is labeled, grew the arena by all of them (about 860 KB
        a canvas) and it never shrank. `release` shrinks the arena once the run is done."""
        options = _SHRINK if release else None
        return [np.array(out) for out in self.session.run(output_names, feeds, options)]


def _shrinking() -> ort.RunOptions:
    """Run options that hand the arena's unused regions back when a run ends."""
    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


_SHRINK = _shrinking()


def providers(device: str) -> list[str]:
    """onnxruntime's execution providers for HOOK_DEVICE."""
    available = ort.get_available_providers()
    if device == "cuda" and PROVIDERS["cuda"] not in available:
        raise ConfigError(
            "HOOK_DEVICE=cuda but this onnxruntime has no CUDA provider "
            f"(available: {', '.join(available)}); install onnxruntime-gpu or use cpu/auto"
        )
    if device in ("cuda", "auto") and PROVIDERS["cuda"] in available:
        return [PROVIDERS["cuda"], PROVIDERS["cpu"]]
    return [PROVIDERS["cpu"]]


class OpenVino:
    """One OpenVINO compiled model and its infer request, from the same ONNX file.

    The ONNX file is read once: the metadata comes from that read (OpenVINO keeps metadata_props
    in rt_info["framework"]) and the compiled model from it, so no second copy stays loaded.
    One infer request per engine, behind a lock; infer() releases the GIL.
    """

    def __init__(self, path: Path, device: str, threads: int, precision: str = "f32") -> None:
        core = _core()
        target = openvino_device(core, device)
        if precision == "bf16":
            capabilities = list(core.get_property(target, "OPTIMIZATION_CAPABILITIES"))
            if "BF16" not in capabilities:
                raise ConfigError(
                    f"HOOK_PRECISION=bf16 needs a CPU with AVX-512 BF16 or AMX; OpenVINO's "
                    f"{target} offers {', '.join(capabilities)}: use HOOK_PRECISION=f32 or int8"
                )
        # one stream of latency-minded work per lane; the float parts of an int8 build run f32
        config: dict[str, Any] = {
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        }
        if threads > 0 and target == "CPU":
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            model = core.read_model(str(path))
            self.metadata = _metadata(model)
            self.compiled = core.compile_model(model, target, config)
        except RuntimeError as exc:  # OpenVINO's errors for unreadable or unsupported models
            raise ConfigError(f"model {path} cannot be loaded by openvino: {exc}") from None
        del model
        self.request = self.compiled.create_infer_request()
        self.lock = threading.Lock()
        self.inputs = tuple(
            Port(
                p.get_any_name(),
                _shape(p.get_partial_shape()),
                OV_TYPES.get(p.get_element_type().get_type_name(), "unsupported"),
            )
            for p in self.compiled.inputs
        )
        self.outputs = tuple(p.get_any_name() for p in self.compiled.outputs)
        # an output may carry several tensor names; any of them asks for it
        self.names = [set(p.get_names()) for p in self.compiled.outputs]
        self.description = f"openvino {target} {precision}"

    def run(
        self, output_names: list[str] | None, feeds: dict[str, np.ndarray], *, release: bool = False
    ) -> list[Any]:
        """`release` is onnxruntime's: OpenVINO copies the outputs out and keeps no arena."""
        with self.lock:
            result = self.request.infer(feeds)  # copies the outputs out (share_outputs=False)
        values = result.to_tuple()
        if output_names is None:
            return list(values)
        picked = []
        for name in output_names:
            found = [i for i, names in enumerate(self.names) if name in names]
            if not found:
                raise ValueError(f"the model has no output {name}")
            picked.append(values[found[0]])
        return picked


_CORE: list[ov.Core] = []
_CORE_LOCK = threading.Lock()


def _core() -> ov.Core:
    """The process's one OpenVINO Core; openvino is imported only when chosen (0.2 s, 28 MB)."""
    with _CORE_LOCK:
        if not _CORE:
            import openvino  # noqa: PLC0415

            _CORE.append(openvino.Core())
        return _CORE[0]


def openvino_device(core: ov.Core, device: str) -> str:
    """OpenVINO's device for HOOK_DEVICE: CPU, or its GPU for auto when there is one."""
    if device == "cuda":
        raise ConfigError(
            "HOOK_DEVICE=cuda is onnxruntime's CUDA provider; with HOOK_ENGINE=openvino use "
            "HOOK_DEVICE=cpu, or auto (OpenVINO's GPU when one is present), or set "
            "HOOK_ENGINE=onnxruntime"
        )
    gpus = [d for d in core.available_devices if d.startswith("GPU")]
    return gpus[0] if device == "auto" and gpus else "CPU"


def _shape(shape: Any) -> tuple[int | str, ...]:
    return tuple(d.get_length() if d.is_static else "?" for d in shape)


def _metadata(model: ov.Model) -> dict[str, str]:
    """The ONNX metadata_props, which OpenVINO's ONNX reader keeps in rt_info["framework"]."""
    if not model.has_rt_info(["framework"]):
        return {}
    framework = model.get_rt_info()["framework"]
    return {str(key): str(framework[key].astype(str)) for key in framework}


# the class of each engine hook.detect.registry names (tests/detect/test_engines.py keeps the two
# in step)
KINDS: dict[str, Callable[[Path, str, int, str], Engine]] = {
    "onnxruntime": OnnxRuntime,
    "openvino": OpenVino,
}
