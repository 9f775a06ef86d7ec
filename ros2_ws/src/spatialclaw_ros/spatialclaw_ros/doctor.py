"""``spatialclaw doctor``: what works on this machine (endpoint, kernel sandbox, GPU, perception, ROS).

Each check is a line ``ok`` or ``missing`` with the reason. The model endpoint and the kernel are
required; GPU, perception backends and ROS are optional. A check that raises (a broken package
install, say) becomes a ``missing`` line naming the error: the doctor itself never crashes.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Config, KernelConfig
from .frames import Frame, FrameSet
from .kernel.layers import SandboxLayer
from .kernel.pool import KernelPool
from .llm.client import ChatModel, ModelError
from .perception.backends import RECONSTRUCTION_BACKENDS, SEGMENTATION_BACKENDS

#: Packages that model-based perception backends run on, with what each enables.
MODEL_PACKAGES = {
    "torch": "model backends (PyTorch)",
    "depth_anything_3": "Depth Anything 3 reconstruction",
    "sam3": "SAM 3 segmentation",
    "onnxruntime": "ONNX exports of the perception models",
}
DOCTOR_TIMEOUT_S = 10.0


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    required: bool = False

    def line(self) -> str:
        """``ok      name: detail`` or ``missing name: detail``."""
        return f"{'ok' if self.ok else 'missing':8}{self.name}: {self.detail}"


def check_endpoint(config: Config) -> Check:
    """Ask the endpoint for its models (GET /models)."""
    endpoint = config.model.base_url
    try:
        with ChatModel(config.model) as model:
            models = model.ping(timeout_s=DOCTOR_TIMEOUT_S)
    except ModelError as error:
        return Check("model endpoint", False, str(error), required=True)
    configured = config.model.model
    if configured and configured not in models:
        return Check("model endpoint", False, f"{endpoint} does not list the configured model '{configured}' "
                                              f"(it lists: {', '.join(models) or 'nothing'})", required=True)
    return Check("model endpoint", True, f"{endpoint} lists {', '.join(models) or 'no models'}", required=True)


def check_kernel(config: Config) -> list[Check]:
    """Start a kernel session on a one-pixel frame, run a cell and list its sandbox layers."""
    frames = FrameSet([Frame(index=0, rgb=np.zeros((1, 1, 3), np.uint8))])
    pool = KernelPool(config.kernel)
    try:
        with pool.session(frames, {}) as session:
            result = session.execute("print(1 + 1)", timeout_s=DOCTOR_TIMEOUT_S)
            layers, rlimits = session.sandbox_layers, session.rlimits
    except Exception as error:  # any failure to start or run the kernel is what this check reports
        return [Check("kernel", False, f"{type(error).__name__}: {error}", required=True)]
    finally:
        pool.close()
    works = result.stdout.strip() == "2"
    checks = [Check("kernel", works, "runs cells" if works else f"a test cell gave {result.status.value}: "
                    f"{result.error or result.stdout!r}", required=True)]
    return checks + sandbox_checks(config.kernel, layers, rlimits)


def sandbox_checks(kernel: KernelConfig, layers: list[SandboxLayer], rlimits: dict[str, int]) -> list[Check]:
    """One line for the static check, one per OS sandbox layer (a missing one was accepted by
    kernel.optional_layers: a required one stops the kernel) and one for the resource limits."""
    checks = [Check("sandbox static check", kernel.static_check,
                    "AST check before every cell" if kernel.static_check else "off (kernel.static_check)")]
    if not kernel.os_sandbox:
        return checks + [Check("sandbox OS layers", False, "not applied (kernel.os_sandbox is off)")]
    for layer in layers:
        detail = layer.detail if layer.active else f"{layer.detail} (accepted by kernel.optional_layers)"
        checks.append(Check(f"sandbox {layer.name}", layer.active, detail))
    limits = ", ".join(f"{name.removeprefix('RLIMIT_')}={value}" for name, value in rlimits.items())
    return checks + [Check("sandbox rlimits", bool(rlimits), limits or "not reported")]


def check_gpu() -> Check:
    """A CUDA device through torch when torch is importable, else whether nvidia-smi exists."""
    if importlib.util.find_spec("torch") is not None:
        try:
            torch = importlib.import_module("torch")
        except Exception as error:  # a broken install (a missing CUDA library, say) is what this reports
            return Check("GPU", False, f"torch is installed but does not import: {type(error).__name__}: {error}")
        if torch.cuda.is_available():
            return Check("GPU", True, f"torch sees {torch.cuda.get_device_name(0)}")
        return Check("GPU", False, f"torch {torch.__version__} is installed but sees no CUDA device")
    smi = shutil.which("nvidia-smi")
    if smi:
        return Check("GPU", True, f"nvidia-smi at {smi} (torch is not installed)")
    return Check("GPU", False, "torch is not installed and nvidia-smi is not on PATH")


def check_backends() -> list[Check]:
    """Whether each registered perception backend imports."""
    checks = []
    for kind, registry in (("reconstruction", RECONSTRUCTION_BACKENDS), ("segmentation", SEGMENTATION_BACKENDS)):
        for name, target in registry.items():
            module, _, attribute = target.partition(":")
            try:
                getattr(importlib.import_module(module), attribute)
            except Exception as error:  # an optional backend that cannot load is what this reports
                checks.append(Check(f"{kind} backend {name}", False, f"{target}: {type(error).__name__}: {error}"))
            else:
                checks.append(Check(f"{kind} backend {name}", True, target))
    return checks


def check_perception(config: Config) -> Check:
    """Whether the configured perception backends have the local model files they load."""
    perception = config.perception
    chosen = f"reconstruction {perception.reconstruction}, segmentation {perception.segmentation}"
    needed = []
    if perception.reconstruction == "da3":
        needed.append(("perception.da3.model_dir", perception.da3.model_dir, Path.is_dir))
    if perception.reconstruction == "da3-onnx":
        needed.append(("perception.da3_onnx.onnx_path", perception.da3_onnx.onnx_path, Path.is_file))
    if perception.segmentation == "sam3":
        from .perception.sam3 import default_bpe_path  # finds files only: imports no model package

        needed += [("perception.sam3.checkpoint", perception.sam3.checkpoint, Path.is_file),
                   ("perception.sam3.bpe_path", perception.sam3.bpe_path or default_bpe_path(), Path.is_file)]
    if perception.segmentation == "sam3-onnx":
        from .perception.sam3 import default_bpe_path
        from .perception.sam3_onnx import SIDECAR

        export_dir = perception.sam3_onnx.export_dir
        needed += [("perception.sam3_onnx.export_dir", export_dir and str(Path(export_dir) / SIDECAR),
                    Path.is_file),
                   ("perception.sam3_onnx.bpe_path", perception.sam3_onnx.bpe_path or default_bpe_path(), Path.is_file)]
    missing = [f"{key} {value!r} not found" for key, value, exists in needed if not (value and exists(Path(value)))]
    if missing:
        return Check("perception", False, f"{chosen}: {'; '.join(missing)} (see models/README.md)")
    return Check("perception", True, chosen + (": model files found" if needed else ": no model files needed"))


def check_perception_providers(config: Config) -> list[Check]:
    """Load the configured model backends as the node's configure step does (engines built or loaded, graphs run
    once) and say what each really runs on; nothing for weight-free backends."""
    from .perception.service import NO_MODEL, PerceptionService

    with PerceptionService(config.perception) as service:
        try:
            service.load()
        except Exception as error:  # a backend that cannot load is what this reports
            return [Check("perception models", False, f"{type(error).__name__}: {error}")]
        return [Check(f"perception {status.kind} {status.name}", status.loaded,
                      f"runs on {status.provider}" + (f"; {status.detail}" if status.detail else ""))
                for status in service.report() if status.provider != NO_MODEL]


def check_packages() -> list[Check]:
    """Which model packages and ROS 2 (rclpy) are importable (found without importing them)."""
    checks = []
    for module, purpose in {**MODEL_PACKAGES, "rclpy": "the ROS 2 node"}.items():
        found = importlib.util.find_spec(module) is not None
        name = "ROS 2" if module == "rclpy" else f"package {module}"
        detail = f"importable: {purpose}" if found else f"not importable (needed for {purpose})"
        checks.append(Check(name, found, detail))
    return checks


def guarded(name: str, required: bool, check: Callable[[], Check | list[Check]]) -> list[Check]:
    """The lines of ``check()``, or one failed line named ``name`` saying what it raised."""
    try:
        result = check()
    except Exception as error:  # the doctor reports every failure instead of dying on one
        return [Check(name, False, f"the check itself failed: {type(error).__name__}: {error}", required=required)]
    return result if isinstance(result, list) else [result]


def run_checks(config: Config) -> list[Check]:
    """Every check, in report order."""
    checks = (("model endpoint", True, lambda: check_endpoint(config)), ("kernel", True, lambda: check_kernel(config)),
              ("GPU", False, check_gpu), ("perception", False, lambda: check_perception(config)),
              ("perception providers", False, lambda: check_perception_providers(config)),
              ("perception backends", False, check_backends), ("packages", False, check_packages))
    return [line for name, required, check in checks for line in guarded(name, required, check)]
