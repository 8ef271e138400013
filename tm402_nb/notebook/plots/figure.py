"""The figure ``plot_frame`` draws into: shown in a notebook as a light and a dark rendering.

A notebook shows a figure by asking it for its display formats. JupyterLab prefers ``text/html`` to
``image/png``, so :meth:`ThemedFigure._repr_html_` returns two PNGs, the figure in its own (light)
colours and recoloured by :func:`~.theme.dark_colours`, and a ``<style>`` that shows the one
matching JupyterLab's theme (JupyterLab sets ``data-jp-theme-light`` on ``<body>``). The dark image
carries ``hidden``: where the ``<style>`` does not apply (JupyterLab sanitizes the HTML of an
untrusted notebook and drops ``<style>`` but keeps ``hidden``; other front ends) only the light one
shows, never both. The inline backend still adds its own ``image/png`` of the figure as it is
(light): that is what nbconvert's PDF, a terminal and ``savefig`` get.

The renderings are made when the figure is displayed (the end of the cell, ``plt.show()``), so
whatever the user changed on the returned Axes is in both. The figure is recoloured in place for
the dark one and put back after; nothing is displayed from here, and pyplot still manages the
figure, so the inline backend shows it once, as it did before.
"""

from __future__ import annotations

import base64
import html
import io

from matplotlib.figure import Figure

from .theme import dark_colours, luminance

LIGHT_CLASS, DARK_CLASS = "tm402-chart-light", "tm402-chart-dark"
#: Shows the dark image and hides the light one in JupyterLab's dark themes. ``!important`` wins over
#: any ``[hidden]{display:none}`` a front end's own stylesheet may add.
STYLE = (
    "<style>"
    f'body[data-jp-theme-light="false"] img.{LIGHT_CLASS}{{display:none !important}}'
    f'body[data-jp-theme-light="false"] img.{DARK_CLASS}{{display:inline !important}}'
    "</style>"
)
#: Colours in each rendering: a chart has a few dozen, plus the anti-aliased shades between them.
#: 256 keeps every pure colour exact and the PNG about a third of its 24-bit size.
PALETTE_COLOURS = 256


def png(fig: Figure) -> bytes:
    """``fig`` as a palette PNG, at its own dpi and cropped as the inline backend crops it."""
    from PIL import Image

    buf = io.BytesIO()
    # The figure's own face, whatever savefig.facecolor says: the dark rendering's is the canvas.
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor=fig.get_facecolor(), edgecolor="none")
    buf.seek(0)
    with Image.open(buf) as image:
        quantized = image.convert("RGB").quantize(PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    quantized.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _img(data: bytes, cls: str, alt: str, *, hidden: bool) -> str:
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="{src}"{" hidden" if hidden else ""}>'


def _alt(fig: Figure) -> str:
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    return "chart: " + "; ".join(titles) if titles else "chart"


def themed_html(fig: Figure) -> str:
    """The light and the dark rendering of ``fig`` in one HTML block (see the module's docstring)."""
    light = png(fig)
    with dark_colours(fig):
        dark = png(fig)
    alt = _alt(fig)
    return (
        '<div class="tm402-chart">'
        + _img(light, LIGHT_CLASS, alt, hidden=False)
        + _img(dark, DARK_CLASS, alt, hidden=True)
        + STYLE
        + "</div>"
    )


def _light_and_opaque(fig: Figure) -> bool:
    from matplotlib.colors import to_rgba

    r, g, b, a = to_rgba(fig.get_facecolor())
    return a == 1 and luminance(r, g, b) >= 0.5


class ThemedFigure(Figure):
    """A matplotlib Figure that a notebook shows in JupyterLab's light or dark theme, as it is set."""

    def _repr_html_(self) -> str | None:
        if "WebAgg" in type(self.canvas).__name__:  # %matplotlib notebook: its own interactive HTML
            return super()._repr_html_()
        if not _light_and_opaque(self):
            # A face made dark or transparent (a dark style, facecolor="none"): the figure is shown
            # as its maker chose, by the backend's image alone.
            return None
        return themed_html(self)
