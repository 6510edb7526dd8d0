"""What every teaching figure is drawn on: a board of unit cells, and the picture it becomes.

A ``Board`` is one matplotlib axes whose unit is one cell of a grid, rows growing downwards as
in an array. Grids of numbers, window frames, arrows, images and 3-D blocks are placed on it by
(row, column) of their top-left corner, and the figure takes the size of what was drawn, so a
4x4 input and a 28x28 image come out at the same scale per cell. ``Picture`` holds the rendered
PNG: a notebook shows it, ``save`` writes it.

matplotlib is imported when a figure is drawn, never when numcnn is, and no pyplot state is
touched (each figure has its own Agg canvas), as in ``numcnn.viz``.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from . import words

# The colours a figure uses for its roles; the same role has the same colour in every figure.
CURRENT = "tab:red"     # the window being computed, and what it produces
NEXT = "tab:blue"       # the next window
PAD = "0.88"            # padding cells
GRID = "0.45"           # cell borders
CELL_INCHES = 0.36      # the printed size of one cell


class Picture:
    """A finished figure as PNG bytes; Jupyter displays it, ``save`` writes it to a file."""

    def __init__(self, png: bytes, title: str, size: tuple[int, int], texts: tuple[str, ...] = ()):
        self.png, self.title, self.size = png, title, size
        self.texts = texts  # every text drawn (numbers, labels), so what a figure says can be checked

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return f"<Picture {self.title!r}, {self.size[0]}x{self.size[1]} PNG>"

    def save(self, path) -> Path:
        """Write the PNG to ``path`` (folders made as needed) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.png)
        return path


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("the teaching figures need matplotlib (pip install 'numcnn[train]')") from None


def drawing(draw):
    """Decorator: ``draw`` returns a Board; the figure function returns its Picture, drawn in
    the fonts of the words in use (a translation may need a font with its script)."""
    @functools.wraps(draw)
    def figure(*args, **kwargs) -> Picture:
        require_matplotlib()
        import matplotlib

        with matplotlib.rc_context(words.font_settings()):
            return draw(*args, **kwargs).picture()
    return figure


def pastel(n: int) -> list:
    """n distinct light colours (RGBA), for telling pixels apart behind their numbers."""
    import matplotlib

    if n <= 10:
        base = matplotlib.colormaps["tab10"](np.arange(n))
    elif n <= 20:
        base = matplotlib.colormaps["tab20"](np.arange(n))
    else:
        base = matplotlib.colormaps["hsv"](np.linspace(0, 1, n, endpoint=False))
    return [tuple(0.45 * np.asarray(c[:3]) + 0.55) + (1.0,) for c in base]


class Board:
    """One axes measured in cells: (row, col) of a top-left corner places everything."""

    def __init__(self):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.figure = Figure(dpi=100)
        FigureCanvasAgg(self.figure)
        self.ax = self.figure.add_axes((0, 0, 1, 1))
        self.ax.set_axis_off()
        self.ax.set_aspect("equal")
        self.bounds = [np.inf, np.inf, -np.inf, -np.inf]  # top, left, bottom, right
        self.title = ""

    def _cover(self, top, left, bottom, right) -> None:
        b = self.bounds
        self.bounds = [min(b[0], top), min(b[1], left), max(b[2], bottom), max(b[3], right)]

    def grid(self, top, left, values=None, shape=None, colours=None, fmt="{:g}", fontsize=9,
             bold=None, edge=GRID) -> None:
        """A grid of cells: ``values`` (2-D) written in them, ``colours`` a 2-D array of
        colours (None: white), ``bold`` a boolean mask of values to emphasise."""
        from matplotlib.patches import Rectangle

        rows, cols = np.shape(values) if values is not None else shape
        for r in range(rows):
            for c in range(cols):
                face = "white" if colours is None or colours[r][c] is None else colours[r][c]
                self.ax.add_patch(Rectangle((left + c, top + r), 1, 1, facecolor=face, edgecolor=edge, lw=0.8))
                if values is not None and values[r][c] is not None:
                    text = values[r][c] if isinstance(values[r][c], str) else fmt.format(values[r][c])
                    heavy = bold is not None and bold[r][c]
                    self.ax.text(left + c + 0.5, top + r + 0.5, text, ha="center", va="center",
                                 fontsize=fontsize + (1 if heavy else 0), fontweight="bold" if heavy else "normal")
        self._cover(top, left, top + rows, left + cols)

    def frame(self, top, left, height, width, colour=CURRENT, dashed=False, lw=3.0, inset=0.06) -> None:
        """A window's outline, drawn just inside its cells so that neighbours stay apart."""
        from matplotlib.patches import Rectangle

        self.ax.add_patch(Rectangle((left + inset, top + inset), width - 2 * inset, height - 2 * inset,
                                    fill=False, edgecolor=colour, lw=lw, ls="--" if dashed else "-", zorder=5))

    def ring(self, row, col, colour=CURRENT) -> None:
        """A circle around one cell (a pooling window's winner)."""
        from matplotlib.patches import Circle

        self.ax.add_patch(Circle((col + 0.5, row + 0.5), 0.42, fill=False, edgecolor=colour, lw=2, zorder=6))

    def text(self, row, col, text, size=10, ha="center", va="center", colour="black", weight="normal") -> None:
        self.ax.text(col, row, text, ha=ha, va=va, fontsize=size, color=colour, fontweight=weight)
        self._cover(row - 0.5, col - 0.5, row + 0.5, col + 0.5)

    def caption(self, top, left, width, text, size=10) -> None:
        """Text (one line or more) centred just above a thing whose top-left corner is (top, left)."""
        self.text(top - 0.2, left + width / 2, text, size=size, va="bottom")

    def arrow(self, start, end, text="", colour="0.25") -> None:
        """An arrow from (row, col) to (row, col), labelled above its middle."""
        from matplotlib.patches import FancyArrowPatch

        (r0, c0), (r1, c1) = start, end
        self.ax.add_patch(FancyArrowPatch((c0, r0), (c1, r1), arrowstyle="-|>", mutation_scale=14,
                                          color=colour, lw=1.4, zorder=4))
        if text:
            self.text((r0 + r1) / 2 - 0.45, (c0 + c1) / 2, text, size=9, colour=colour)
        self._cover(min(r0, r1), min(c0, c1), max(r0, r1), max(c0, c1))

    def image(self, top, left, array, height, cmap="gray", vmin=None, vmax=None) -> None:
        """A 2-D array drawn as an image ``height`` cells tall, one colour per element."""
        array = np.asarray(array, dtype=np.float64)
        width = height * array.shape[1] / array.shape[0]
        self.ax.imshow(array, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                       extent=(left, left + width, top + height, top), zorder=1)
        from matplotlib.patches import Rectangle

        self.ax.add_patch(Rectangle((left, top), width, height, fill=False, edgecolor=GRID, lw=0.8))
        self._cover(top, left, top + height, left + width)

    def block(self, top, left, height, width, depth, colour, label="", inside="") -> None:
        """A 3-D box: a front face height x width with ``depth`` drawn receding up and right,
        the way the textbook draws (C, H, W) tensors; ``label`` goes below, ``inside`` on the face."""
        from matplotlib.patches import Polygon, Rectangle

        dx, dy = 0.5 * depth, -0.5 * depth
        face = dict(facecolor=colour, edgecolor="0.2", lw=1)
        self.ax.add_patch(Polygon([(left, top), (left + dx, top + dy), (left + width + dx, top + dy),
                                   (left + width, top)], alpha=0.75, **face))
        self.ax.add_patch(Polygon([(left + width, top), (left + width + dx, top + dy),
                                   (left + width + dx, top + height + dy), (left + width, top + height)],
                                  alpha=0.6, **face))
        self.ax.add_patch(Rectangle((left, top), width, height, **face))
        if inside:
            self.text(top + height / 2, left + width / 2, inside, size=9)
        if label:
            self.text(top + height + 0.6, left + (width + dx) / 2, label, size=9)
        self._cover(top + dy, left, top + height, left + width + dx)

    def picture(self, margin: float = 0.6) -> Picture:
        top, left, bottom, right = self.bounds
        if self.title:
            self.ax.text((left + right) / 2, top - 0.9, self.title, ha="center", va="bottom", fontsize=11)
            top -= 1.6
        top, left, bottom, right = top - margin, left - margin, bottom + margin, right + margin
        self.ax.set_xlim(left, right)
        self.ax.set_ylim(bottom, top)  # rows grow downwards, as in an array
        self.figure.set_size_inches((right - left) * CELL_INCHES, (bottom - top) * CELL_INCHES)
        buffer = io.BytesIO()
        # Text may reach past the cells it labels: the tight box keeps all of it.
        self.figure.savefig(buffer, format="png", bbox_inches="tight", pad_inches=0.1)
        png = buffer.getvalue()
        size = (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big"))  # the IHDR chunk
        texts = tuple(text.get_text() for text in self.ax.texts if text.get_text())
        return Picture(png, self.title, size, texts)
