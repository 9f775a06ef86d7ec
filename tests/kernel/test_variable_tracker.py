"""Variable summaries after each cell: new, changed, deleted; only what may have changed is summarised again."""

import numpy as np
from PIL import Image

from spatialclaw_ros.kernel.variables import VariableTracker


class Probe:
    """A value whose repr counts how often it is asked for."""

    calls = 0

    def __repr__(self) -> str:
        Probe.calls += 1
        return "Probe()"


def test_new_changed_deleted_and_in_place_edits():
    preloaded = {"np": np, "InputImages": [1, 2]}
    namespace = dict(preloaded)
    tracker = VariableTracker(preloaded)
    assert tracker.update(namespace) == {"new": [], "changed": [], "deleted": []}
    namespace.update(points=[1, 2], small=np.zeros(3), big=np.zeros((100, 100)), label="cup",
                     image=Image.new("RGB", (4, 3)), _hidden=1)
    changes = tracker.update(namespace)
    assert [row[0] for row in changes["new"]] == ["big", "image", "label", "points", "small"]
    assert tracker.names == ["big", "image", "label", "points", "small"]
    namespace["points"].append(3)  # in place, length changed
    namespace["small"][0] = 7  # in place, a shown value changed
    namespace["big"][0, 0] = 7  # in place, nothing shown changed
    namespace["label"] = "cup"  # same value, same object (interned): unchanged
    namespace["image"] = namespace["image"].resize((8, 6))  # rebound
    del namespace["InputImages"]
    namespace["InputImages"] = [9]  # a preloaded name rebound is a user variable
    changes = tracker.update(namespace)
    assert {row[0]: row[2] for row in changes["changed"]} == {
        "image": "RGB 8x6", "points": "len 3 = [1, 2, 3]", "small": "float64 (3,) = [7.0, 0.0, 0.0]"}
    assert [row[0] for row in changes["new"]] == ["InputImages"]
    del namespace["big"]
    assert tracker.update(namespace)["deleted"] == ["big"] and "big" not in tracker.names


def test_unchanged_values_are_not_summarised_again():
    namespace = {"probe": Probe(), "items": {"a": 1}}
    tracker = VariableTracker({})
    tracker.update(namespace)
    calls = Probe.calls
    for _ in range(5):
        assert tracker.update(namespace) == {"new": [], "changed": [], "deleted": []}
    assert Probe.calls == calls
    namespace["items"]["a"] = 2  # a dict value replaced in place is seen
    assert tracker.update(namespace)["changed"] == [["items", "dict", "len 1 = {'a': 2}"]]


def test_after_a_cell_only_the_names_it_mentions_are_looked_into():
    namespace = {"points": [1, 2], "other": [1]}
    tracker = VariableTracker({})
    tracker.update(namespace)
    namespace["points"].append(3)
    namespace["other"].append(2)  # as if changed through an alias the cell does not name
    changes = tracker.update(namespace, "points.append(3)\nprint(len(points))")
    assert changes["changed"] == [["points", "list", "len 3 = [1, 2, 3]"]]
    namespace["other"] = [0]  # a rebound name is seen whatever the code says
    assert tracker.update(namespace, "pass")["changed"] == [["other", "list", "len 1 = [0]"]]
