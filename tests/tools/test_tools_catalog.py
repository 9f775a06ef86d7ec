"""The tool catalogue: every public method of every namespace is documented, with its signature."""

from __future__ import annotations

import inspect

import pytest

from spatialclaw_ros.agent.prompts import tool_reference
from spatialclaw_ros.tools import TOOL_CLASSES
from spatialclaw_ros.tools.catalog import RESULT_TYPES, describe_object, describe_tools, public_methods, signature_text

OURS = ("Geometry", "Mask", "Time", "Graph", "Draw")


def test_every_public_method_is_listed_with_signature_and_docstring():
    catalogue = describe_tools()
    for namespace, cls in TOOL_CLASSES.items():
        assert f"tools.{namespace}: " in catalogue
        assert inspect.getdoc(cls), f"tools.{namespace} has no class docstring"
        for name in public_methods(cls):
            member = vars(cls)[name]
            assert inspect.getdoc(member), f"tools.{namespace}.{name} has no docstring"
            signature = "" if isinstance(member, property) else signature_text(member, drop_self=True)
            assert f"tools.{namespace}.{name}{signature}\n" in catalogue
            assert inspect.getdoc(member).splitlines()[0] in catalogue
    for cls in RESULT_TYPES:
        assert f"  {cls.__name__}(" in catalogue


def test_signatures_show_defaults_keyword_markers_and_returns():
    catalogue = describe_tools()
    assert "tools.Geometry.closest_point_distance(points_a, points_b, *, robust=True) -> Distance\n" in catalogue
    assert "tools.Time.frame_to_seconds(frame_index) -> float\n" in catalogue
    assert "Box3D(center, size, rotation, frame; yaw_deg, corners): " in catalogue


def test_our_namespaces_fit_the_prompt_budget():
    catalogue = describe_tools()
    ours = sum(len(block) for block in catalogue.split("\n\n") if block.startswith(tuple(f"tools.{n}:" for n in OURS)))
    results = len(catalogue[catalogue.index("Result types"):])
    # 7000 before issue 10; +500 for the reference-compatible forms: Draw's lists and colors, Graph's validity,
    # fit_ground_plane_ransac's confidence and (normal, mask), normalized_to_pixel's str rule.
    assert ours + results < 7500


def test_the_whole_tool_reference_fits_its_budget():
    # 16.2k chars before issue 10; the reference-compatible kernel types (FrameImage, VisualFeedback,
    # LocateAnswer, feedback) and members (num_objects, get_by_frame_index, render_bev's arguments, the video
    # windows) add about 3.5k. About 5k tokens of a 48k-token context.
    assert len(tool_reference()) < 20000


def test_describe_object_for_functions_and_objects():
    def show(*images, label: str = "") -> None:
        """Attach images to the next observation."""

    class Vlm:
        """Separate model conversations about images."""

        def locate(self, images, question: str) -> str:
            """x, y in 0-1000 normalised coordinates, or "Not visible"."""
            return question

        def _private(self) -> None:
            pass

    described_show = describe_object("show", show)
    assert described_show == "show(*images, label='') -> None\n    Attach images to the next observation."
    described = describe_object("vlm", Vlm())
    assert described.splitlines() == [
        "vlm: Separate model conversations about images.",
        "  vlm.locate(images, question) -> str",
        '    x, y in 0-1000 normalised coordinates, or "Not visible".',
    ]


def test_describe_object_lists_properties():
    class Images(list):
        """Frames as a list."""

        @property
        def frame_indices(self) -> list[int]:
            """Absolute frame indices."""
            return []

    assert describe_object("InputImages", Images()).splitlines() == [
        "InputImages: Frames as a list.", "  InputImages.frame_indices", "    Absolute frame indices.",
    ]


def test_an_undocumented_method_is_an_error():
    class Sloppy:
        """Has an undocumented method."""

        def measure(self) -> float:
            return 1.0

    with pytest.raises(ValueError, match="sloppy.measure has no docstring"):
        describe_object("sloppy", Sloppy())
