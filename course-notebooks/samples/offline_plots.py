"""Bokeh plots that work without the internet, with BokehJS served by the hub.

Bokeh makes plots with Python, but the browser draws them with BokehJS, a JavaScript library.
By default ``output_notebook()`` asks a public CDN for it; ``resources=INLINE`` would instead
copy the whole library (about 4 MB) into every notebook, twice. ``LOCAL_BOKEH`` points the
notebook at the hub's own copy, under ``/hub/static/vendor/bokeh/<version>/``: the browser
fetches it once and keeps it, and the saved notebook stays small.

Use it like this::

    from bokeh.io import output_notebook
    from offline_plots import LOCAL_BOKEH
    output_notebook(resources=LOCAL_BOKEH, hide_banner=True)

Environment: ``OERHUB_VENDOR_BASE`` changes where the files are looked for (default
``/hub/static/vendor``), as for the maps in ``offline_maps.py``.
"""

from __future__ import annotations

import os

import bokeh
from bokeh.resources import Resources

__all__ = ["VENDOR_BASE", "LOCAL_BOKEH", "bokeh_root_url"]

VENDOR_BASE = os.environ.get("OERHUB_VENDOR_BASE", "/hub/static/vendor").rstrip("/")


def bokeh_root_url(version: str = bokeh.__version__) -> str:
    """Where the hub serves this version of BokehJS (Bokeh adds ``static/js/...``)."""
    return f"{VENDOR_BASE}/bokeh/{version}/"


# MathJax (1.8 MB) and the JavaScript API are left out: these samples need neither.
LOCAL_BOKEH = Resources(mode="server", root_url=bokeh_root_url(), components=["bokeh", "bokeh-gl", "bokeh-widgets", "bokeh-tables"])
