"""onnxruntime sessions for the ONNX backends (``da3-onnx``, ``sam3-onnx``): providers, TensorRT engine caches, reports.

The configured providers (``perception.onnx``) become onnxruntime's provider list: TensorRT (FP16, engine and
timing caches, explicit shape profiles), then CUDA, then CPU, keeping those this onnxruntime build has and, for the
two GPU providers, only when a CUDA device is visible. TensorRT engines are tied to the GPU and the TensorRT version,
so each graph's engines live in a folder keyed by GPU name, compute capability, TensorRT version, precision, the ONNX
file's hash and its input shapes: a changed GPU, TensorRT or export never loads a stale engine. A TensorRT version
known to break a model is left out for that model, and the session's report says so. The GPU and TensorRT are found
through the CUDA driver and TensorRT's own library (ctypes), so neither torch nor TensorRT's Python package is needed
(onnxruntime-gpu lists its TensorRT provider whether or not TensorRT is installed: without the library it is left out).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import OnnxRuntimeConfig

log = logging.getLogger(__name__)

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
#: Tried in this order when ``perception.onnx.providers`` is empty.
DEFAULT_PROVIDERS = (TENSORRT, CUDA, CPU)
GPU_PROVIDERS = (TENSORRT, CUDA)
#: CUDA driver attributes (cuda.h: CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR).
_CC_MAJOR, _CC_MINOR = 75, 76
#: TensorRT's runtime library names, newest first (``getInferLibVersion`` is in each).
_NVINFER_LIBRARIES = ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so")


@dataclass(frozen=True)
class KnownBadTensorRT:
    """A TensorRT release that gives wrong output for one model family: that family does not run on it."""

    family: str  # a model family as the backends name it ("depth-anything-3", "sam3")
    versions: str  # a regular expression matched against the full version ("10.3.0")
    reason: str


KNOWN_BAD_TENSORRT = (
    KnownBadTensorRT("depth-anything-3", r"10\.3(\.|$)",
                     "TensorRT 10.3 (JetPack 6.2) gives Depth Anything an unstable depth scale; later TensorRT fixes "
                     "it (upgrade, or keep the CUDA provider)"),
)


@dataclass(frozen=True)
class GpuIdentity:
    """What a TensorRT engine is tied to on the GPU side."""

    name: str  # e.g. "NVIDIA GeForce RTX 4090", "Orin"
    compute_capability: tuple[int, int]

    @property
    def slug(self) -> str:
        """File-name form: ``nvidia-geforce-rtx-4090-sm89``."""
        name = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")
        return f"{name}-sm{self.compute_capability[0]}{self.compute_capability[1]}"


@dataclass(frozen=True)
class RuntimeEnvironment:
    """What a session can run on here: onnxruntime's available providers, the CUDA device, TensorRT's version."""

    available: tuple[str, ...]
    gpu: GpuIdentity | None = None
    tensorrt: str | None = None

    @classmethod
    def detect(cls, device_id: int = 0) -> RuntimeEnvironment:
        """This machine's environment (TensorRT is looked for only where onnxruntime has its provider)."""
        import onnxruntime

        available = tuple(onnxruntime.get_available_providers())
        return cls(available, detect_gpu(device_id), detect_tensorrt() if TENSORRT in available else None)


def detect_gpu(device_id: int = 0) -> GpuIdentity | None:
    """Name and compute capability of CUDA device ``device_id`` from the CUDA driver; None without driver or device."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    name = ctypes.create_string_buffer(256)
    calls = (lambda: cuda.cuInit(0), lambda: cuda.cuDeviceGet(ctypes.byref(device), device_id),
             lambda: cuda.cuDeviceGetName(name, len(name), device),
             lambda: cuda.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, device),
             lambda: cuda.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, device))
    if any(call() != 0 for call in calls):  # CUDA_SUCCESS is 0
        return None
    return GpuIdentity(name.value.decode(errors="replace"), (major.value, minor.value))


def detect_tensorrt() -> str | None:
    """The version of the TensorRT library onnxruntime's TensorRT provider loads ("10.3.0"): from the loader's path or
    NVIDIA's ``tensorrt_libs`` wheel; None if absent."""
    spec = importlib.util.find_spec("tensorrt_libs")  # found, not imported
    folders = [Path(folder) for folder in (spec.submodule_search_locations or [])] if spec else []
    for library in [*_NVINFER_LIBRARIES, *(str(folder / name) for folder in folders for name in _NVINFER_LIBRARIES)]:
        try:
            number = ctypes.CDLL(library).getInferLibVersion()
        except (OSError, AttributeError):
            continue
        return tensorrt_version_string(number)
    return None


def tensorrt_version_string(number: int) -> str:
    """TensorRT's packed version number as text: 100300 -> "10.3.0" (TensorRT 10), 8601 -> "8.6.1" (TensorRT 8)."""
    if number >= 100000:
        return f"{number // 10000}.{number // 100 % 100}.{number % 100}"
    return f"{number // 1000}.{number // 100 % 10}.{number % 100}"


def known_bad_tensorrt(family: str, version: str | None) -> str:
    """Why TensorRT ``version`` must not run ``family`` ("" when nothing is known against it)."""
    for bad in KNOWN_BAD_TENSORRT:
        if version and bad.family == family and re.match(bad.versions, version):
            return f"TensorRT {version} is known bad for {family}: {bad.reason}"
    return ""


@dataclass(frozen=True)
class InputShape:
    """The shapes one graph input takes: static when min == opt == max, else a TensorRT optimisation profile."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    @classmethod
    def static(cls, shape: Sequence[int]) -> InputShape:
        shape = tuple(int(s) for s in shape)
        return cls(shape, shape, shape)

    @property
    def is_static(self) -> bool:
        return self.min == self.opt == self.max


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def profile_options(shapes: Mapping[str, InputShape]) -> dict[str, str]:
    """onnxruntime's TensorRT profile options for the dynamic inputs of ``shapes`` (none for a static graph)."""
    dynamic = {name: shape for name, shape in shapes.items() if not shape.is_static}
    if not dynamic:
        return {}
    return {f"trt_profile_{which}_shapes": ",".join(f"{name}:{_dims(getattr(shape, which))}"
                                                    for name, shape in dynamic.items())
            for which in ("min", "opt", "max")}


def default_engine_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/spatialclaw/engines`` (``~/.cache/...`` when unset)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spatialclaw" / "engines"


def onnx_digest(onnx_path: Path) -> str:
    """SHA-256 of ``FILE.onnx`` and its external weights ``FILE.onnx.data`` (what the exporters here write)."""
    digest = hashlib.sha256()
    for path in (onnx_path, onnx_path.with_name(onnx_path.name + ".data")):
        if path.is_file():
            with path.open("rb") as stream:
                while block := stream.read(1 << 24):
                    digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class EngineKey:
    """Everything a TensorRT engine built from one graph depends on; ``folder`` is where its engines live."""

    gpu: GpuIdentity
    tensorrt: str
    fp16: bool
    onnx_sha256: str
    shapes: Mapping[str, InputShape]

    def platform_folder(self, root: Path) -> Path:
        """The folder shared by every graph on this GPU and TensorRT (it holds the timing cache)."""
        return root / f"{self.gpu.slug}-trt{self.tensorrt}"

    def folder(self, root: Path, onnx_path: Path) -> Path:
        """``ROOT/<gpu>-sm<cc>-trt<version>/<graph>-<fp16|fp32>-<onnx hash>-<shapes hash>``."""
        shapes = json.dumps({name: asdict(shape) for name, shape in sorted(self.shapes.items())})
        shapes_hash = hashlib.sha256(shapes.encode()).hexdigest()[:8]
        precision = "fp16" if self.fp16 else "fp32"
        return self.platform_folder(root) / f"{onnx_path.stem}-{precision}-{self.onnx_sha256[:16]}-{shapes_hash}"

    def manifest(self, onnx_path: Path) -> dict:
        """What ``key.json`` in the engine folder records, for people reading the cache."""
        return {"onnx": str(onnx_path), "onnx_sha256": self.onnx_sha256, "gpu": self.gpu.name,
                "compute_capability": ".".join(map(str, self.gpu.compute_capability)), "tensorrt": self.tensorrt,
                "fp16": self.fp16, "shapes": {name: asdict(shape) for name, shape in self.shapes.items()}}


@dataclass
class SessionPlan:
    """The providers one graph's session is asked for, and why others were left out: ``warnings`` for what an
    operator should act on (a configured provider missing, a known-bad TensorRT), ``notes`` for default providers
    this machine simply lacks."""

    providers: list[tuple[str, dict]]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    engine_folder: Path | None = None


def requested_providers(runtime: OnnxRuntimeConfig) -> list[str]:
    """``perception.onnx.providers`` as a list (the default chain when empty); ValueError naming an unknown one."""
    import onnxruntime

    names = [name.strip() for name in runtime.providers.split(",") if name.strip()] or list(DEFAULT_PROVIDERS)
    unknown = [name for name in names if name not in onnxruntime.get_all_providers()]
    if unknown:
        raise ValueError(f"perception.onnx.providers names {', '.join(unknown)}, which onnxruntime does not know; "
                         f"e.g. {', '.join(DEFAULT_PROVIDERS)}")
    return names


def plan_session(onnx_path: Path, runtime: OnnxRuntimeConfig, environment: RuntimeEnvironment, *, family: str,
                 shapes: Mapping[str, InputShape]) -> SessionPlan:
    """Providers and options for ``onnx_path``: the requested ones this environment can run, TensorRT with FP16 and
    keyed engine and timing caches (``EngineKey``), CUDA on the configured device, CPU last."""
    plan = SessionPlan([])
    absent = plan.warnings if runtime.providers.strip() else plan.notes  # configured, or only the default chain
    for name in requested_providers(runtime):
        if name not in environment.available:
            absent.append(f"{name} left out: this onnxruntime build does not have it")
        elif name in GPU_PROVIDERS and environment.gpu is None:
            absent.append(f"{name} left out: no CUDA device {runtime.device_id} is visible")
        elif name == TENSORRT and environment.tensorrt is None:
            absent.append(f"{name} left out: TensorRT's library (libnvinfer) is not installed")
        elif name == TENSORRT and (reason := known_bad_tensorrt(family, environment.tensorrt)):
            plan.warnings.append(f"{name} left out: {reason}")
        elif name == TENSORRT:
            plan.providers.append((name, _tensorrt_options(onnx_path, runtime, environment, shapes, plan)))
        elif name == CUDA:
            plan.providers.append((name, {"device_id": runtime.device_id}))
        else:
            plan.providers.append((name, {}))
    if CPU not in (name for name, _ in plan.providers):
        plan.providers.append((CPU, {}))
    return plan


def _tensorrt_options(onnx_path: Path, runtime: OnnxRuntimeConfig, environment: RuntimeEnvironment,
                      shapes: Mapping[str, InputShape], plan: SessionPlan) -> dict:
    key = EngineKey(environment.gpu, environment.tensorrt, runtime.trt_fp16, onnx_digest(onnx_path), dict(shapes))
    root = Path(runtime.engine_cache_dir) if runtime.engine_cache_dir else default_engine_cache_dir()
    plan.engine_folder = key.folder(root, onnx_path)
    plan.engine_folder.mkdir(parents=True, exist_ok=True)
    (plan.engine_folder / "key.json").write_text(json.dumps(key.manifest(onnx_path), indent=2) + "\n")
    return {"device_id": runtime.device_id, "trt_fp16_enable": runtime.trt_fp16,
            "trt_max_workspace_size": runtime.trt_workspace_mb << 20, **profile_options(shapes),
            "trt_engine_cache_enable": True, "trt_engine_cache_path": str(plan.engine_folder),
            "trt_timing_cache_enable": True, "trt_timing_cache_path": str(key.platform_folder(root))}


@dataclass
class OnnxSession:
    """One graph's onnxruntime session and the plan it was made from."""

    path: Path
    session: object  # onnxruntime.InferenceSession
    plan: SessionPlan
    shapes: Mapping[str, InputShape]

    @property
    def provider(self) -> str:
        """The provider the session really runs on first (onnxruntime's own list, after any fallback)."""
        return self.session.get_providers()[0]

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> list[np.ndarray]:
        return self.session.run(None if outputs is None else list(outputs), dict(feeds))

    def warm_up(self) -> None:
        """One run on zeros at each input's opt shape: TensorRT builds (or loads) its engine, CUDA picks kernels."""
        dtypes = {i.name: i.type for i in self.session.get_inputs()}
        self.run({name: np.zeros(shape.opt, _NUMPY_TYPES[dtypes[name]]) for name, shape in self.shapes.items()})


_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
                "tensor(bool)": np.bool_, "tensor(float16)": np.float16}


def open_session(onnx_path: str | Path, runtime: OnnxRuntimeConfig, *, family: str, shapes: Mapping[str, InputShape],
                 environment: RuntimeEnvironment | None = None) -> OnnxSession:
    """An onnxruntime session for ``onnx_path`` as ``plan_session`` plans it; the plan's notes and warnings are
    logged."""
    import onnxruntime

    onnx_path = Path(onnx_path)
    environment = environment or RuntimeEnvironment.detect(runtime.device_id)
    plan = plan_session(onnx_path, runtime, environment, family=family, shapes=shapes)
    for note in plan.notes:
        log.info("%s: %s", onnx_path.name, note)
    for warning in plan.warnings:
        log.warning("%s: %s", onnx_path.name, warning)
    names = [name for name, _ in plan.providers]
    session = onnxruntime.InferenceSession(str(onnx_path), providers=names,
                                           provider_options=[options for _, options in plan.providers])
    return OnnxSession(onnx_path, session, plan, dict(shapes))
