"""Memoisation of perception outputs within a question, keyed by backend, frame index and frame content.

The content key hashes every input a backend reads (RGB, depth, intrinsics, distortion, pose), so
a key can never serve a stale result; the cache is bounded in bytes and evicts least recently used.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, TypeVar

import numpy as np

from ..frames import Frame
from .backends import ReconstructionBackend
from .reconstruction import Reconstruction, ViewGeometry

T = TypeVar("T")


def frame_content_key(frame: Frame) -> str:
    """A digest of the frame's pixels, depth, intrinsics, distortion and pose."""
    return content_digest(frame.rgb, frame.depth, frame.K, frame.distortion, frame.T_world_camera)


def content_digest(*arrays: np.ndarray | None) -> str:
    """A digest of the arrays' dtypes, shapes and bytes (None counts as its own value)."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        if array is None:
            digest.update(b"none")
        else:
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.data)
    return digest.hexdigest()


def nbytes(value: Any) -> int:
    """Memory held by a cached value: ``.nbytes`` of arrays, views and reconstructions, the sum over a list of
    them, and the object's own size for anything else (e.g. a count)."""
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    return int(value.nbytes) if hasattr(value, "nbytes") else sys.getsizeof(value)


class PerceptionCache:
    """Thread-safe LRU memo bounded by ``max_bytes``; ``hits`` and ``misses`` count lookups."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Any | None:
        """The cached value (counted as a hit) or None (counted as a miss)."""
        with self._lock:
            if key in self._entries:
                self.hits += 1
                self._entries.move_to_end(key)
                return self._entries[key][0]
            self.misses += 1
            return None

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value``, evicting the least recently used entries beyond ``max_bytes``."""
        size = nbytes(value)
        with self._lock:
            if key in self._entries:
                self._bytes -= self._entries.pop(key)[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                self._bytes -= self._entries.popitem(last=False)[1][1]

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value for ``key``, computing and storing it on a miss."""
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value


#: One cache per process: the kernel process serves one question, so it never outlives it there.
SHARED_CACHE = PerceptionCache()


class CachedReconstructor:
    """``frames -> Reconstruction`` through ``backend``, reusing cached outputs.

    A per-frame backend is cached per (backend, frame index, content key) and only missing frames
    are computed; a multi-view backend is cached per (backend, every frame's index and content key).
    With ``together``, a multi-view backend reconstructs those frames as one set and serves any of
    them from it: segmentation asks for single frames, which alone cannot be aligned to TF.
    """

    def __init__(self, backend: ReconstructionBackend, cache: PerceptionCache = SHARED_CACHE, *,
                 together: list[Frame] | None = None) -> None:
        self.backend = backend
        self.cache = cache
        self.together = together

    def __call__(self, frames: list[Frame]) -> Reconstruction:
        if not self.backend.per_frame:
            wanted = [f.index for f in frames]
            whole = self.together if self.together and set(wanted) <= {f.index for f in self.together} else frames
            keys = tuple((self.backend.name, f.index, frame_content_key(f)) for f in whole)
            recon = self.cache.get_or_compute(keys, lambda: self.backend.reconstruct(whole))
            return recon if whole is frames else recon.subset(wanted)
        keys = [(self.backend.name, f.index, frame_content_key(f)) for f in frames]
        views: dict[int, ViewGeometry] = {}
        missing = []
        for frame, key in zip(frames, keys):
            view = self.cache.get(key)
            if view is None:
                missing.append((frame, key))
            else:
                views[frame.index] = view
        if missing:
            computed = self.backend.reconstruct([frame for frame, _ in missing])
            for frame, key in missing:
                views[frame.index] = computed.views[frame.index]
                self.cache.put(key, computed.views[frame.index])
        return Reconstruction([views[f.index] for f in frames], world_frame=self.backend.world_frame,
                              source=self.backend.name)
