"""Jupyter explorers for bayeskit (installed as ``bayeskit.widgets``).

Each explorer is an object that owns its controls, its view and its model state, displays itself
in a notebook cell, and exposes ``state`` / ``set(...)`` for tests and scripted demos::

    from bayeskit.widgets import GPExplorer
    GPExplorer()          # last expression in a cell: shows the explorer

The maths lives in :mod:`bayeskit`; this package only adds controls and drawing. Live plots draw
in the browser (an anywidget canvas fed with float32 arrays), see ``DESIGN.md`` "Widgets".
"""

from .bll_explorer import LastLayerCanvas, LastLayerExplorer
from .bo_explorer import BOCanvas, BOExplorer
from .filter_explorer import FilterCanvas, FilterExplorer
from .gp_explorer import GPCanvas, GPExplorer, posterior_on_grid
from .vae_explorer import FlowCanvas, LatentCanvas, LatentExplorer

__all__ = ["GPExplorer", "GPCanvas", "posterior_on_grid", "FilterExplorer", "FilterCanvas", "BOExplorer", "BOCanvas",
           "LastLayerExplorer", "LastLayerCanvas", "LatentExplorer", "LatentCanvas", "FlowCanvas"]
