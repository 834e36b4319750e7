"""The public map of reports: open cases and those fixed lately, as GeoJSON for the city map (clustered
there), filtered by category and state. Anyone may read it, so it carries nothing about who reported, no
description and no address: where, what, how far along, and the first photo."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from wecity.cases.queries import public_map
from wecity.core.http import client_address

router = APIRouter(tags=["citizens"])

# The states as a citizen reads them on the map (the portal's plain words, CITIZEN_STATUS_LABELS).
STATE_OF = {"resolved": "fixed", "verified": "fixed", "closed": "fixed"}


@router.get("/api/v1/public/map", summary="Open and recently fixed cases as GeoJSON (no personal data)")
async def reports_map(request: Request, category: Annotated[str | None, Query(max_length=64)] = None,
                      state: Literal["open", "fixed", "all"] = "all") -> JSONResponse:
    ctx = request.app.state.ctx
    await ctx.limits.hit("public_map", client_address(request) or "-")
    now = ctx.clock.now()
    rows = await ctx.db.read(lambda conn: public_map(conn, now, category_code=category or None, state=state))
    features: list[dict[str, Any]] = [{
        "type": "Feature", "id": r["case_id"],
        "geometry": {"type": "Point", "coordinates": [r["long"], r["lat"]]},
        "properties": {"case_id": r["case_id"], "status": r["status"], "state": STATE_OF.get(r["status"], "open"),
                       "category": r["category_code"], "category_zh": r["category_zh"],
                       "category_en": r["category_en"], "reported_at": r["created_at"].isoformat(),
                       "photo": f"/media/{r['photo']}/thumbnail" if r["photo"] else None,
                       "link": f"/cases/{r['case_id']}"},
    } for r in rows]
    # A minute in caches: a map reload in a crowd does not query the database every time.
    return JSONResponse({"type": "FeatureCollection", "features": features},
                        headers={"Cache-Control": "public, max-age=60"})
