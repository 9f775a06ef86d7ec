"""The OS sandbox layers of a kernel process: the policy the parent sets, the status each layer reports, and how
a missing layer stops the process. Standard library only: the launcher imports it before anything else.

A layer that cannot be applied ends the launcher or the worker with ``EXIT_SANDBOX_MISSING`` and one line on
stderr (``SandboxMissing``'s message: the layer, why, and the setting that accepts a weaker sandbox), unless the
policy lists the layer as optional; then it is reported inactive and the process goes on.
"""

from __future__ import annotations

import ctypes
import json
import sys
from dataclasses import asdict, dataclass, field

#: Exit status of a launcher or worker that stopped because a required sandbox layer is missing (EX_CONFIG).
EXIT_SANDBOX_MISSING = 78

#: Why each layer matters, for the message that says it is missing.
LAYER_PURPOSE = {
    "pid_namespace": "a cell could see and name other processes (signal, renice, re-pin, limit them)",
    "sandbox_uid": "a cell would run as root, the owner of the parent and of the system's processes",
    "landlock": "a cell could read and write any file the kernel process's user may",
    "seccomp": "a cell could use sockets, start processes, trace or signal others",
}


@dataclass(frozen=True)
class SandboxPolicy:
    """What the parent asks of a kernel process's sandbox (from KernelConfig)."""

    sandbox_uid: int = 65534
    optional_layers: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "SandboxPolicy":
        values = json.loads(text)
        return cls(int(values["sandbox_uid"]), tuple(values["optional_layers"]))


@dataclass(frozen=True)
class SandboxLayer:
    """One layer's status: active or not, whether the policy requires it, and what it does or why it is missing."""

    name: str
    active: bool
    required: bool
    detail: str

    @classmethod
    def from_json(cls, values: dict) -> "SandboxLayer":
        return cls(str(values["name"]), bool(values["active"]), bool(values["required"]), str(values["detail"]))


class SandboxMissing(Exception):
    """A required layer could not be applied; the message names it, why, and the setting that accepts that."""

    def __init__(self, layer: str, why: str) -> None:
        super().__init__(f"kernel sandbox layer '{layer}' is missing: {why}. Without it {LAYER_PURPOSE[layer]}. "
                         f"To accept a weaker sandbox, set kernel.optional_layers: [{layer}]")
        self.layer = layer


@dataclass
class LayerReport:
    """The layers a process applied so far; ``add`` raises SandboxMissing for a required layer that failed."""

    policy: SandboxPolicy
    layers: list[SandboxLayer] = field(default_factory=list)

    def add(self, name: str, active: bool, detail: str) -> None:
        required = name not in self.policy.optional_layers
        if required and not active:
            raise SandboxMissing(name, detail)
        self.layers.append(SandboxLayer(name, active, required, detail))

    def to_list(self) -> list[dict]:
        """The layers as JSON-safe dicts (SandboxLayer.from_json reads one back)."""
        return [asdict(layer) for layer in self.layers]


def exit_missing(error: SandboxMissing) -> None:
    """End the process the documented way for a missing layer."""
    print(error, file=sys.stderr, flush=True)
    sys.exit(EXIT_SANDBOX_MISSING)


def libc() -> ctypes.CDLL:
    """The C library, with errno kept for ctypes.get_errno()."""
    return ctypes.CDLL(None, use_errno=True)


PR_SET_PDEATHSIG = 1
SIGKILL = 9


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (re-armed after every uid change)."""
    libc().prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
