"""The system prompt is generated from the code it documents: tools, namespace objects, sandbox rules."""

import re

from spatialclaw_ros.agent.prompts import system_prompt
from spatialclaw_ros.kernel.static_check import ALLOWED_MODULES, check_cell


def test_the_import_rule_in_the_prompt_is_the_static_checks_allow_list(frames):
    text = " ".join(system_prompt(frames).split())
    listed = re.search(r"they may import only (.+?); names", text).group(1).split(", ")
    assert sorted(listed) == sorted(ALLOWED_MODULES)
    assert all(not check_cell(f"import {module}") for module in listed)
    assert check_cell("import os") and "os" not in listed


def test_the_types_tools_return_are_documented_with_their_methods(frames):
    text = system_prompt(frames)
    for member in ("PerFrameMask.get_masked_points(", "PerFrameMask.get_centroid_3d(", "Reconstruction.render_bev(",
                   "Reconstruction.frame_indices", "tools.SAM3.segment_image_by_box(", "ReturnAnswer(answer, unit=None, evidence=None)"):
        assert member in text, member
