"""HTTP API of the AI platform under /api/v1/ai: hot spots (for staff; the operations page draws them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from wecity.ai.hotspots import ALPHA, MAX_DAYS, RESOLUTION, hotspots
from wecity.core.http import Ctx
from wecity.identity.deps import CurrentStaff

router = APIRouter(prefix="/api/v1/ai", tags=["ai"])


@router.get("/hotspots", summary="Statistically significant clusters of cases (Getis-Ord Gi* on H3 cells, "
            "false-discovery-rate corrected) as GeoJSON, with the method and its figures")
async def get_hotspots(ctx: Ctx, user: CurrentStaff,
                       days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 30,
                       category: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
                       resolution: Annotated[int, Query(ge=6, le=9)] = RESOLUTION,
                       alpha: Annotated[float, Query(gt=0, le=0.2)] = ALPHA) -> dict[str, Any]:
    now = ctx.clock.now()
    return await ctx.db.read(lambda c: hotspots(c, now=now, days=days, category=category, resolution=resolution,
                                                alpha=alpha))
