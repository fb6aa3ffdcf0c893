"""Folium maps that work without the internet.

Folium draws maps with Leaflet, a JavaScript library. By default every map asks a public
CDN (a server on the internet) for Leaflet, its stylesheets and a few plugins, and asks a
tile server for the background picture of the world. On this hub there is no internet, and
many schools prefer that students' browsers don't call third parties anyway. So:

* ``local_map(...)`` makes a ``folium.Map`` whose JavaScript and CSS come from the hub
  itself, under ``/hub/static/vendor/`` (the hub ships exact copies of those files).
* It has no tile layer (``tiles=None``): the background is a plain colour, and everything
  you add (markers, polygons, GeoJSON) is drawn as usual.
* ``add_country_outlines(m)`` draws Europe's borders from a small file shipped beside the
  notebooks, so the map still has some context without tiles.

Use it exactly like ``folium.Map``::

    from offline_maps import local_map
    m = local_map(location=[50, 10], zoom_start=4)
    folium.Marker([48.85, 2.35], popup="Paris").add_to(m)
    m

Environment: ``OERHUB_VENDOR_BASE`` changes where the files are looked for (default
``/hub/static/vendor``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import folium
from branca.element import CssLink, Element, Figure, JavascriptLink, Link

__all__ = ["VENDOR_BASE", "LOCAL_ASSETS", "local_map", "add_country_outlines", "load_geojson", "localize_links"]

HERE = Path(__file__).resolve().parent
VENDOR_BASE = os.environ.get("OERHUB_VENDOR_BASE", "/hub/static/vendor").rstrip("/")

# Every CDN address that folium 0.20 / branca 0.8 use for the features in these samples,
# and the path of the hub's own copy (under VENDOR_BASE). None means "leave it out": the
# samples don't need it and the hub doesn't serve it (Bootstrap 3's Glyphicons font: use
# Font Awesome icons, ``folium.Icon(icon="star", prefix="fa")``; the icon-rotation CSS:
# only ``folium.Icon(angle=...)`` needs it). An address missing from this table stops the
# map with an error that names it, rather than quietly calling the internet: that happens
# when a newer folium changes a version number, and then this table and the hub's
# server/web/vendor-assets.ts must be updated together.
LOCAL_ASSETS: dict[str, Optional[str]] = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "leaflet/leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "leaflet/leaflet.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": "bootstrap/js/bootstrap.bundle.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": "bootstrap/css/bootstrap.min.css",
    "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js": "awesome-markers/leaflet.awesome-markers.js",
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css": "awesome-markers/leaflet.awesome-markers.css",
    # branca's colour-scale legend (used by folium.Choropleth and branca.colormap) is drawn with d3 version 3.
    "https://cdnjs.cloudflare.com/ajax/libs/d3/3.5.5/d3.min.js": "d3-v3/d3.min.js",
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css": None,
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/leaflet.awesome.rotate.min.css": None,
}

# Without tiles the map's background is this colour (a light sea blue). The doubled class wins
# over leaflet.css, which the page loads after this rule.
BACKGROUND_CSS = "<style>.leaflet-container.leaflet-container { background: #dbe9f4; }</style>"


def localize_links(figure: Figure) -> None:
    """Point every <script src> and <link href> in ``figure``'s header at the hub's copies.

    Raises ``RuntimeError`` for an address that isn't in LOCAL_ASSETS and isn't already local.
    """
    header = figure.header
    for name, child in list(header._children.items()):
        if not isinstance(child, Link):
            continue
        url = child.url
        if url.startswith(VENDOR_BASE + "/"):
            continue
        if url in LOCAL_ASSETS:
            local = LOCAL_ASSETS[url]
            if local is None:
                del header._children[name]
            else:
                child.url = f"{VENDOR_BASE}/{local}"
            continue
        raise RuntimeError(
            f"offline_maps: the map wants {url!r} from the internet, and the hub has no copy of it. "
            "Add it to LOCAL_ASSETS in offline_maps.py and to server/web/vendor-assets.ts, "
            "or leave out the feature that needs it."
        )


class LocalMap(folium.Map):
    """A ``folium.Map`` whose scripts and styles come from the hub (see the module's text)."""

    def render(self, **kwargs: Any) -> None:
        # Rendering the map renders everything on it; each part adds the libraries it needs
        # to the page's header. Only then are they all known and can be pointed at the hub.
        super().render(**kwargs)
        localize_links(self.get_root())


def local_map(location: Optional[list[float]] = None, zoom_start: int = 4, **kwargs: Any) -> LocalMap:
    """Like ``folium.Map(...)``, but offline: no tiles, and Leaflet & co. served by the hub."""
    if "tiles" in kwargs and kwargs["tiles"] is not None:
        raise ValueError("local_map has no tile layer: map tiles come from the internet, which this hub can't reach")
    kwargs["tiles"] = None
    m = LocalMap(location=location, zoom_start=zoom_start, **kwargs)
    m.get_root().header.add_child(Element(BACKGROUND_CSS), name="offline_background")
    return m


def load_geojson(name: str = "europe_countries.geojson") -> dict[str, Any]:
    """Read a GeoJSON file from the data/ folder beside the notebooks."""
    with open(HERE / "data" / name, encoding="utf-8") as f:
        return json.load(f)


def add_country_outlines(m: folium.Map, name: str = "Country borders") -> folium.GeoJson:
    """Draw Europe's countries in light grey: a stand-in for the missing background map."""
    layer = folium.GeoJson(
        load_geojson(),
        name=name,
        style_function=lambda _feature: {"fillColor": "#f7f5ef", "color": "#9a9a9a", "weight": 1, "fillOpacity": 1},
        tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
        control=False,
    )
    layer.add_to(m)
    return layer
