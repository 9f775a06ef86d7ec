"""The static check: what it refuses, the messages (line and what to do instead), what it lets through."""

from __future__ import annotations

import pytest
from escape_corpus import STATIC_ESCAPES

from spatialclaw_ros.kernel.static_check import check_cell, rejection_message


@pytest.mark.parametrize("escape", STATIC_ESCAPES, ids=[e.description for e in STATIC_ESCAPES])
def test_escape_is_refused(escape):
    assert check_cell(escape.code), f"not refused: {escape.description}"


def test_corpus_is_large_enough():
    assert len(STATIC_ESCAPES) >= 30


def test_messages_name_the_line_and_the_alternative():
    code = "\n".join([
        "x = 1",
        "import os",
        "y = random._os",
        "data = np.load('a.npy')",
        "value = eval('1')",
        "getattr(x, name)",
        "'{0.real}'.format(x)",
    ])
    messages = [str(v) for v in check_cell(code)]
    assert messages[0].startswith("line 2: import of 'os' is not allowed here; the namespace already has np, scipy, "
                                  "cv2, math, plt")
    assert "you may import: PIL, bisect" in messages[0]
    assert messages[1] == "line 3: access to '._os' is not allowed (names starting with '_' are private); use the public API"
    assert messages[2].startswith("line 4: '.load' reads or writes files, which cells cannot do; keep data in variables")
    assert messages[3] == "line 5: 'eval' is not available in this kernel; write the expression directly in the cell"
    assert messages[4].startswith("line 6: 'getattr' may only be called as getattr(obj, 'name')")
    assert messages[5].startswith("line 7: format fields with attribute or index access")
    assert len(messages) == 6


def test_rejection_message_lists_at_most_five():
    violations = check_cell("\n".join(f"import os{i}" for i in range(8)))
    text = rejection_message(violations)
    assert text.splitlines()[0] == "The cell was not run: 8 construct(s) are not allowed in this kernel."
    assert text.splitlines()[5].startswith("line 5: import of 'os4'")
    assert text.splitlines()[-1] == "... and 3 more"


ORDINARY_CELL = '''
import numpy as np
import scipy.spatial
from scipy.spatial.transform import Rotation
from dataclasses import dataclass
import json, math, itertools, collections
from PIL import Image, ImageDraw
import matplotlib.pyplot as plt

@dataclass
class Box:
    x: float
    y: float

    def __post_init__(self):
        self.area = self.x * self.y

    def __repr__(self):
        return f"Box({self.x:.1f}, {self.y:.1f})"

boxes = [Box(1.0, 2.0), Box(3.0, 4.0)]
areas = np.array([b.area for b in boxes])
print("{:.2f} m".format(areas.mean()), f"{areas.max():.3f}")
shape = getattr(areas, "shape")
tree = scipy.spatial.cKDTree(np.random.rand(10, 3))
counts = collections.Counter("abca")
fig, ax = plt.subplots()
ax.imshow(np.zeros((4, 4)))
show(fig, label="empty")
print(json.dumps({"n": len(boxes)}), math.pi)
'''


def test_ordinary_agent_code_passes():
    assert check_cell(ORDINARY_CELL) == []


def test_benign_relatives_of_the_closed_routes_pass():
    cell = "\n".join([
        "import re, typing",
        "pattern = re.compile(r'(\\d+) (\\d+)')",
        "label = '{:.2f} m'.format(1.234)",
        "named = '{name}: {value}'.format(name='gap', value=2)",
        "T = typing.Optional[int]",
        "L = typing.Literal['left', 'right']",
        "pairs: list[tuple[int, int]] = []",
        "counts = {'chair': 2}",
        "print(counts['chair'], tools.SAM3.backend)",
    ])
    assert check_cell(cell) == []


def test_syntax_errors_are_left_to_the_kernel():
    assert check_cell("x = (1 +") == []


def test_the_closed_routes_say_what_to_write_instead():
    messages = [str(v) for v in check_cell("\n".join([
        "T = typing.Optional['os.system']",
        "m = map(str.format, ['{0}'], [1])",
        "plt.rcParams['backend'] = 'agg'",
        "functools.singledispatch(print)",
    ]))]
    assert messages == [
        "line 1: a string inside a type expression is a forward reference that typing would evaluate as code; write "
        "the type itself",
        "line 2: .format() is only allowed on a string literal; use an f-string",
        "line 3: matplotlib's backend is fixed (Agg) in this kernel; draw figures and pass them to show()",
        "line 4: '.singledispatch' reaches interpreter internals or evaluates code, which cells cannot do",
    ]
