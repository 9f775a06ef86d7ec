"""Objects of the kernel namespace that stand for a service, not a value: they copy as themselves."""

from __future__ import annotations


class Shared:
    """``copy.copy`` and ``copy.deepcopy`` return the object itself.

    A tool holds the question's frames, the perception cache and the channel to the parent; a deep copy would
    duplicate all of that (and cannot copy the channel), while the copy could do nothing the original cannot.
    """

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self
