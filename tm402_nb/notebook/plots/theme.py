"""A chart's dark colours, derived from its light ones (issue 15: charts in JupyterLab's dark theme).

A chart is drawn once, in matplotlib's (light) colours; :func:`dark_colours` recolours it in place
for one rendering and puts every colour back afterwards. Only *neutral* colours change (white,
black, greys: backgrounds, text, spines, ticks, grid, edges, the legend's frame): each becomes the
grey with the same contrast against the dark canvas as it had against white, capped at the dark
theme's ink. So white becomes the canvas, black the ink, and a grey that was readable stays as
readable (a 4.5:1 label in light is 4.5:1 in dark). Hues (the up/down colours, the colour cycle,
colormaps, the sandbox label and its own box) carry meaning and stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: JupyterLab Dark's ``--jp-layout-color0`` (the notebook's background) and its text colour,
#: ``--jp-ui-font-color1`` (white at 87 %) composited over it.
DARK_CANVAS = "#111111"
DARK_INK = "#e0e0e0"
#: A colour whose channels differ by at most this much (0-1) is neutral (a grey).
NEUTRAL_SPREAD = 2 / 255

RGBA = tuple[float, float, float, float]


def luminance(r: float, g: float, b: float) -> float:
    """WCAG 2.x relative luminance of an sRGB colour (channels 0-1)."""

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def _grey(lum: float) -> float:
    """The channel value (0-1) of the grey with relative luminance ``lum`` (inverse of :func:`luminance`)."""
    lum = min(max(lum, 0.0), 1.0)
    return lum * 12.92 if lum <= 0.0031308 else 1.055 * lum ** (1 / 2.4) - 0.055


def _lum_of(hex_colour: str) -> float:
    from matplotlib.colors import to_rgb

    return luminance(*to_rgb(hex_colour))


def dark_neutral(rgba: RGBA) -> RGBA:
    """``rgba`` for the dark canvas: a neutral colour keeps its contrast (against white, now against
    :data:`DARK_CANVAS`), at most :data:`DARK_INK`'s; any other colour is returned unchanged."""
    r, g, b, a = rgba
    if max(r, g, b) - min(r, g, b) > NEUTRAL_SPREAD:
        return rgba
    ratio = 1.05 / (luminance(r, g, b) + 0.05)  # its contrast against white
    lum = min(ratio * (_lum_of(DARK_CANVAS) + 0.05) - 0.05, _lum_of(DARK_INK))
    v = _grey(lum)
    return (v, v, v, a)


# -- recolouring a figure in place ---------------------------------------------------------------------------
#: Undoes one change.
Undo = Callable[[], None]


def _swap(get: Callable[[], Any], set_: Callable[[Any], None], original: Any, undo: list[Undo]) -> None:
    """Set the dark version of one colour property, remembering ``original`` (the value as the
    artist was given it, e.g. ``"face"`` or ``None``) so it can be put back exactly."""
    import numpy as np
    from matplotlib.colors import to_rgba_array

    try:
        current = to_rgba_array(get())
    except (ValueError, TypeError):  # "auto", "face" resolved elsewhere, or no colour at all
        return
    if current.size == 0:
        return
    mapped = np.array([dark_neutral((r, g, b, a)) for r, g, b, a in current])
    if np.array_equal(mapped, current):
        return
    set_(tuple(float(c) for c in mapped[0]) if len(mapped) == 1 else mapped)
    undo.append(lambda: set_(original))


def _recolour(artist: Any, undo: list[Undo]) -> None:
    from matplotlib.collections import Collection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Text

    if isinstance(artist, Text):
        _swap(artist.get_color, artist.set_color, getattr(artist, "_color", artist.get_color()), undo)
        box = artist.get_bbox_patch()  # a label's own box: what the label sits on, recoloured with it
        if box is not None:
            _recolour(box, undo)
    elif isinstance(artist, Line2D):
        _swap(artist.get_color, artist.set_color, getattr(artist, "_color", artist.get_color()), undo)
        for name in ("markerfacecolor", "markeredgecolor"):
            raw = getattr(artist, f"_{name}", None)
            if isinstance(raw, str) and raw == "auto":  # follows the line's colour, already swapped
                continue
            get, set_ = getattr(artist, f"get_{name}"), getattr(artist, f"set_{name}")
            _swap(get, set_, raw if raw is not None else get(), undo)
    elif isinstance(artist, Patch | Collection):
        for name in ("facecolor", "edgecolor"):
            get, set_ = getattr(artist, f"get_{name}"), getattr(artist, f"set_{name}")
            _swap(get, set_, getattr(artist, f"_original_{name}", get()), undo)


@contextmanager
def dark_colours(fig: Any) -> Iterator[Any]:
    """``fig`` recoloured for the dark canvas while the block runs; every colour put back after."""
    # Ticks are made as a draw needs them, copying the first tick's colours: a draw first, so every
    # tick the rendering will use exists now and is recoloured (and restored) with the rest.
    fig.draw_without_rendering()
    undo: list[Undo] = []
    try:
        for artist in fig.findobj():
            _recolour(artist, undo)
        yield fig
    finally:
        for step in reversed(undo):
            step()
