"""Parametric furniture: the part lists of tables, chairs, cabinets, bins and the like, centred on their bounding box.

Each builder lays its parts out standing on z = 0 in the object's frame (x = the way it faces) and
returns them shifted so that the union's bounding box is centred on the origin, as ``SceneObject`` wants.
"""

from __future__ import annotations

import numpy as np

from .model import Part

LEG = 0.05  # square leg section, metres
BOARD = 0.04  # table top / seat thickness, metres


def centred(parts: list[Part]) -> tuple[Part, ...]:
    """Shift parts so that their joint bounding box is centred on the origin."""
    offsets = np.array([p.offset for p in parts])
    halves = np.array([p.size for p in parts]) / 2
    middle = ((offsets - halves).min(axis=0) + (offsets + halves).max(axis=0)) / 2
    return tuple(Part(p.shape, p.size, tuple(float(v) for v in np.asarray(p.offset) - middle)) for p in parts)


def _legs(length: float, width: float, height: float) -> list[Part]:
    """Four legs at the corners of a ``length`` x ``width`` footprint, from the floor up to ``height``."""
    dx, dy = length / 2 - LEG / 2, width / 2 - LEG / 2
    return [Part("box", (LEG, LEG, height), (sx * dx, sy * dy, height / 2)) for sx in (-1, 1) for sy in (-1, 1)]


def table(length: float, width: float, height: float) -> tuple[Part, ...]:
    """A top board on four corner legs; ``height`` is the top surface."""
    top = Part("box", (length, width, BOARD), (0.0, 0.0, height - BOARD / 2))
    return centred([top, *_legs(length, width, height - BOARD)])


def chair(depth: float, width: float, seat_height: float, height: float) -> tuple[Part, ...]:
    """Seat on four legs with a backrest along its back (-x) edge, facing +x."""
    seat = Part("box", (depth, width, BOARD), (0.0, 0.0, seat_height - BOARD / 2))
    back_height = height - seat_height
    back = Part("box", (LEG, width, back_height), (-depth / 2 + LEG / 2, 0.0, seat_height + back_height / 2))
    return centred([seat, back, *_legs(depth, width, seat_height - BOARD)])


def sofa(depth: float, width: float, height: float) -> tuple[Part, ...]:
    """A seat block, a backrest along -x and two armrests, facing +x."""
    seat_height, arm_width, back_depth = 0.45, 0.18, 0.22
    arm_height = (seat_height + height) / 2
    seat = Part("box", (depth - back_depth, width - 2 * arm_width, seat_height), (back_depth / 2, 0.0, seat_height / 2))
    back = Part("box", (back_depth, width, height), (-depth / 2 + back_depth / 2, 0.0, height / 2))
    arm_size = (depth - back_depth, arm_width, arm_height)
    arms = [Part("box", arm_size, (back_depth / 2, s * (width / 2 - arm_width / 2), arm_height / 2)) for s in (-1, 1)]
    return centred([seat, back, *arms])


def block(length: float, width: float, height: float) -> tuple[Part, ...]:
    """A plain box (cabinet, cardboard box)."""
    return centred([Part("box", (length, width, height), (0.0, 0.0, height / 2))])


def trash_can(radius: float, height: float) -> tuple[Part, ...]:
    """An upright cylinder."""
    return centred([Part("cylinder", (2 * radius, 2 * radius, height), (0.0, 0.0, height / 2))])


def potted_plant(pot_radius: float, pot_height: float, crown_radius: float) -> tuple[Part, ...]:
    """A cylindrical pot with a spherical crown resting a little inside its rim."""
    crown_z = pot_height + 0.6 * crown_radius
    return centred([
        Part("cylinder", (2 * pot_radius, 2 * pot_radius, pot_height), (0.0, 0.0, pot_height / 2)),
        Part("sphere", (2 * crown_radius,) * 3, (0.0, 0.0, crown_z)),
    ])
