"""The report form's place in words: a report with an address and no pin is placed from the gazetteer, and
the tracking page says where, as the nearest road and the district."""

from __future__ import annotations

from typing import Any

from wecity.geo import geocode
from wecity.geo.service import current_area_index
from wecity.web.i18n import gettext_for


def place_of_address(ctx: Any, text: str) -> geocode.Place | None:
    """(Blocking: called in a worker thread.) The best match of the address in the city's districts (the gazetteer's roads, places, POIs and
    addresses only), or None: the report is then kept with the address in words and no place."""
    if not text.strip():
        return None
    return geocode.best_in_city(text, index=ctx.db.read_sync(current_area_index), gazetteer=ctx["gazetteer"],
                                streets=ctx["streets"])


def place_line(ctx: Any, lat: float, lon: float, locale: str) -> str:
    """"人民东路附近，芙蓉区" / "near Renmin East Road, Furong District": what is at a point, in words."""
    _ = gettext_for(locale).gettext
    found = geocode.reverse(lat, lon, index=ctx.db.read_sync(current_area_index), gazetteer=ctx["gazetteer"])
    zh = locale.startswith("zh")
    district = None if found.district is None else (found.district.name_zh if zh else found.district.name_en)
    road = None if found.road is None else found.road.label(locale)
    if road and district:
        return _("near %(road)s, %(district)s") % {"road": road, "district": district}
    if road:
        return _("near %(road)s") % {"road": road}
    return district or ""
