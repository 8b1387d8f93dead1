"""One style for every figure.

Sizes for a two-column paper, the Okabe–Ito colour-blind-safe palette, one colour, line style
and marker per method, and the atomic PNG + PDF + CSV writer.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot, no global state),
rendered by the Agg backend for PNG and by matplotlib's PDF backend for PDF.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from xsam_theory.figures.table import Table
from xsam_theory.io import atomic_write

__all__ = [
    "DOUBLE",
    "OKABE_ITO",
    "SINGLE",
    "MethodStyle",
    "alpha_colors",
    "figure_style",
    "method_style",
    "new_columns",
    "new_figure",
    "panel_legend",
    "write_figure",
]

#: widths in inches: one column and the full text width of a two-column paper (~ 85 / 178 mm)
SINGLE = 3.35
DOUBLE = 7.0

#: Okabe & Ito (2008), "Color Universal Design": distinguishable under all common colour-vision
#: deficiencies, and in greyscale together with the line styles below
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "grey": "#7F7F7F",
    "dark_yellow": "#A08A00",  # the palette's yellow darkened: readable on white
}

RC = {
    "font.size": 8.0,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8.0,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "legend.fontsize": 6.5,
    "legend.frameon": False,
    "legend.handlelength": 1.8,
    "legend.borderaxespad": 0.3,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "figure.dpi": 100,
    "savefig.dpi": 220,
    "savefig.bbox": None,  # the exact width asked for (constrained layout fills it)
    "pdf.fonttype": 42,  # embed TrueType (no Type 3 fonts, which some venues reject)
    "mathtext.fontset": "dejavusans",
    "image.cmap": "viridis",
    "axes.prop_cycle": matplotlib.cycler(
        color=[
            OKABE_ITO[c]
            for c in ("blue", "vermillion", "green", "orange", "purple", "sky", "black", "yellow")
        ]
    ),
}


class MethodStyle(dict):
    """Keyword arguments for ``Axes.plot`` (``color``, ``ls``, ``marker``) plus ``label``."""


_METHODS: dict[str, dict[str, Any]] = {
    "gd": dict(color=OKABE_ITO["black"], ls="-", marker="o", label="GD"),
    "usam": dict(color=OKABE_ITO["sky"], ls="--", marker="v", label="USAM"),
    "sam": dict(color=OKABE_ITO["blue"], ls="-", marker="s", label="SAM"),
    "nsam": dict(color=OKABE_ITO["grey"], ls="-.", marker="x", label=r"X-SAM $\alpha=0$ (NSAM)"),
    "eigen_sam": dict(color=OKABE_ITO["green"], ls="--", marker="D", label="Eigen-SAM"),
    "xsam_paper": dict(color=OKABE_ITO["vermillion"], ls="-", marker="^", label="X-SAM paper rule"),
    "xsam_paper_flipped": dict(
        color=OKABE_ITO["orange"], ls="--", marker="v", label=r"X-SAM paper rule, $-v$"
    ),
    "xsam_symmetric": dict(
        color=OKABE_ITO["purple"], ls=":", marker="P", label="X-SAM symmetric rule"
    ),
    "xsam_projector": dict(
        color=OKABE_ITO["dark_yellow"], ls="-.", marker="*", label="X-SAM projector form"
    ),
}


def method_style(method: str, label: str | None = None) -> MethodStyle:
    """The colour, line style, marker and default label of a method.

    A method is a preset name, or ``xsam_paper_flipped`` for the paper rule with ``-v``.
    """
    try:
        s = dict(_METHODS[method])
    except KeyError:
        raise ValueError(f"no style for method {method!r}; known: {sorted(_METHODS)}") from None
    if label is not None:
        s["label"] = label
    return MethodStyle(s)


def alpha_colors(alphas: list[float]) -> dict[float, str]:
    """Distinct Okabe–Ito colours for a short ordered list of α values (≤ 7)."""
    order = ("black", "blue", "green", "orange", "vermillion", "purple", "sky")
    if len(alphas) > len(order):
        raise ValueError(f"at most {len(order)} alpha values, got {len(alphas)}")
    return {a: OKABE_ITO[c] for a, c in zip(alphas, order)}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """The package's rcParams, in effect while a figure is built (fonts are read then)."""
    with matplotlib.rc_context(RC):
        yield


def new_figure(
    width: float = DOUBLE, height: float = 2.4, *, nrows: int = 1, ncols: int = 1, **subplot_kw: Any
) -> tuple[Figure, Any]:
    """A :class:`~matplotlib.figure.Figure` (Agg canvas, constrained layout) and its axes."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=True, **subplot_kw)
    return fig, axes


def new_columns(
    width: float, height: float, n: int, width_ratios: tuple[float, ...] | None = None
) -> tuple[Figure, list, list[Axes]]:
    """A figure of ``n`` side-by-side subfigures with one axes each.

    A legend placed with ``subfig.legend(loc="outside lower center")`` sits under its own panel
    and is laid out by constrained layout (an axes legend outside its axes is not).
    """
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    subs = list(fig.subfigures(1, n, wspace=0.01, width_ratios=width_ratios))
    return fig, subs, [s.subplots() for s in subs]


def panel_legend(sub: Any, ax: Axes, **kw: Any) -> None:
    """The legend of ``ax`` under its subfigure ``sub`` (see :func:`new_columns`)."""
    handles, labels = ax.get_legend_handles_labels()
    sub.legend(handles, labels, loc="outside lower center", **{"ncols": 1, "fontsize": 5.8, **kw})


def write_figure(
    fig: Figure, table: Table, out: str | os.PathLike[str], stem: str, *, draft: bool = False
) -> list[Path]:
    """Write ``stem.png``, ``stem.pdf`` and ``stem.csv`` under ``out``, each atomically.

    Each is a temporary file, then renamed: an interrupted run never leaves a half-written file.

    ``draft`` (quick mode) renders faster: PNG at 110 dpi and Type 3 fonts in the PDF
    (embedding TrueType subsets costs about a second per figure).
    """
    out = Path(out)
    paths = []
    rc = {"savefig.dpi": 110, "pdf.fonttype": 3} if draft else {}
    # fontTools warns about the timestamps of the DejaVu fonts it subsets: not our concern
    quiet = logging.getLogger("fontTools")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        _save(fig, table, out, stem, rc, paths)
    finally:
        quiet.setLevel(level)
    return paths


def _save(fig: Figure, table: Table, out: Path, stem: str, rc: dict, paths: list[Path]) -> None:
    with figure_style(), matplotlib.rc_context(rc):
        for fmt in ("png", "pdf"):
            buf = io.BytesIO()
            # no creation date in the PDF: regenerated figures differ only where the data do
            meta = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
            fig.savefig(buf, format=fmt, metadata=meta)
            data = buf.getvalue()
            paths.append(atomic_write(out / f"{stem}.{fmt}", lambda f, d=data: f.write(d)))
    data = table.to_csv().encode("utf-8")
    paths.append(atomic_write(out / f"{stem}.csv", lambda f: f.write(data)))
