"""HTTP API of the AI platform under /api/v1/ai: category suggestion (anyone, rate-limited: the report
form asks as the citizen types), the model cards and retraining (administrators), hot spots, forecasts and
routing figures (staff), duplicate proposals (dispatchers and supervisors), a sensor's readings judged for
anomalies (supervisors)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Path, Query, Request
from pydantic import BaseModel, Field

from wecity.ai import duplicates, training
from wecity.ai.anomaly_rules import MAX_SHOWN, judged_readings
from wecity.ai.forecasts import forecast
from wecity.ai.hotspots import ALPHA, MAX_DAYS, RESOLUTION, hotspots
from wecity.ai.suggest import MAX_TEXT, cache_of, routing_counts, suggest
from wecity.cases import engine
from wecity.cases.choices import Channel
from wecity.context.protocol import store_of
from wecity.core.errors import PermissionDenied
from wecity.core.http import Ctx, client_address
from wecity.identity.choices import Role
from wecity.identity.deps import CurrentStaff
from wecity.identity.service import StaffUser

router = APIRouter(prefix="/api/v1/ai", tags=["ai"])
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"  # no control characters (PostgreSQL refuses a NUL in text)


@router.get("/hotspots", summary="Statistically significant clusters of cases (Getis-Ord Gi* on H3 cells, "
            "false-discovery-rate corrected) as GeoJSON, with the method and its figures (supervisors)")
async def get_hotspots(ctx: Ctx, user: CurrentStaff,
                       days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 30,
                       category: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
                       resolution: Annotated[int, Query(ge=6, le=9)] = RESOLUTION,
                       alpha: Annotated[float, Query(gt=0, le=0.2)] = ALPHA) -> dict[str, Any]:
    await _figures_allowed(ctx, user)
    now = ctx.clock.now()
    return await ctx.db.read(lambda c: hotspots(c, now=now, days=days, category=category, resolution=resolution,
                                                alpha=alpha))


async def _figures_allowed(ctx: Any, user: StaffUser) -> None:
    """Hot spots and forecasts: for supervisors (the operations page's readers), counted per person (each
    costs seconds of CPU on a big city)."""
    if not user.has(Role.SUPERVISOR):
        raise PermissionDenied("for supervisors and administrators", message_zh="仅限督办人员和管理员",
                               code="ai.not_allowed")
    await ctx.limits.hit("ai_figures", f"user:{user.id}")


class SuggestIn(BaseModel):
    description: str = Field(max_length=MAX_TEXT)
    k: int = Field(default=3, ge=1, le=10)
    channel: str = Field(default="portal", pattern=r"^[a-z_0-9]{1,20}$",
                         description="the intake channel asking: only categories it takes are suggested")


@router.post("/suggest", summary="The likeliest categories for a description, with calibrated probabilities, and "
             "whether the first is sure enough to route without a person")
async def post_suggest(request: Request, ctx: Ctx, body: SuggestIn) -> dict[str, Any]:
    await ctx.limits.hit("ai_suggest", client_address(request) or "-")
    cache, var_dir = cache_of(ctx), ctx.settings.var_dir
    return await ctx.db.read(lambda c: suggest(c, cache, var_dir, body.description, k=body.k, channel=body.channel))


def _admin(user: StaffUser) -> None:
    if not user.has(Role.ADMIN):
        raise PermissionDenied("for administrators", message_zh="仅限管理员", code="ai.not_allowed")


@router.get("/models", summary="The category model's versions with their model cards (administrators)")
async def get_models(ctx: Ctx, user: CurrentStaff) -> dict[str, Any]:
    _admin(user)
    now = ctx.clock.now()
    return {"models": await ctx.db.read(training.model_cards),
            "training": await ctx.db.read(lambda c: training.training_state(c, now=now))}


@router.post("/train", status_code=202,
             summary="Start training a new version on the city's cases; it serves only if better on the held-back "
             "cases. Answers at once; the model card is listed in /api/v1/ai/models when it ends (administrators)")
async def post_train(ctx: Ctx, user: CurrentStaff, background: BackgroundTasks) -> dict[str, Any]:
    _admin(user)
    state, run = await training.begin_training(ctx, by=f"user:{user.username}")
    background.add_task(run)
    return {"training": state, "models": "/api/v1/ai/models"}


@router.get("/routing", summary="Reports whose category the model chose: routed automatically, left to the dispatch "
            "centre, and automatic ones staff later re-filed (staff)")
async def get_routing(ctx: Ctx, user: CurrentStaff, days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 30) -> dict[str, Any]:
    since = ctx.clock.now() - timedelta(days=days)
    return {"days": days, **await ctx.db.read(lambda c: routing_counts(c, since=since))}


@router.get("/forecast", summary="Daily cases for the next 14 days with 80% intervals, from the model (seasonal naive "
            "or ETS) with the lower error on the last 14 days, both errors shown (supervisors)")
async def get_forecast(ctx: Ctx, user: CurrentStaff,
                       category: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
                       district: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9A-Za-z]+$")] = None,
                       ) -> dict[str, Any]:
    await _figures_allowed(ctx, user)
    now = ctx.clock.now()
    return await ctx.db.read(lambda c: forecast(c, now=now, category=category, district=district))


def _dispatcher(user: StaffUser) -> None:
    if not (user.has(Role.DISPATCHER) or user.has(Role.SUPERVISOR)):
        raise PermissionDenied("for dispatchers and supervisors, who merge cases",
                               message_zh="仅限派遣员和督办人员（并单由其决定）", code="ai.not_allowed")


@router.get("/duplicates", summary="Older open cases that this case may repeat (or newer ones that may repeat it), "
            "found by text, photo, place and category, each with its score and parts (dispatchers, supervisors)")
async def get_duplicates(ctx: Ctx, user: CurrentStaff,
                         case_id: Annotated[int, Query(ge=1, le=2**31 - 1)]) -> dict[str, Any]:
    _dispatcher(user)
    return {"case_id": case_id, "proposals": await ctx.db.read(lambda c: duplicates.proposals_for(c, case_id)),
            "method": {"radius_m": duplicates.RADIUS_M, "window_days": duplicates.WINDOW.days,
                       "propose_at": duplicates.PROPOSE, "photo_match": duplicates.PHOTO_MATCH,
                       "auto_radius_m": duplicates.AUTO_RADIUS_M}}


@router.post("/duplicates/{proposal_id}/dismiss", summary="Say the two cases of a proposal are different problems; "
             "the pair is not proposed again (dispatchers, supervisors)")
async def dismiss_duplicate(request: Request, ctx: Ctx, user: CurrentStaff,
                            proposal_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> dict[str, Any]:
    _dispatcher(user)
    actor = engine.Actor.staff(user, channel=Channel.STAFF_API, source_address=client_address(request))
    now = ctx.clock.now()
    await ctx.db.write(lambda c: duplicates.dismiss(c, proposal_id, actor, now))
    return {"id": proposal_id, "state": duplicates.DISMISSED}


@router.get("/duplicates/figures", summary="Pairs merged by the platform, merged by staff from a proposal, dismissed "
            "and still proposed (staff)")
async def get_duplicate_figures(ctx: Ctx, user: CurrentStaff) -> dict[str, Any]:
    return await ctx.db.read(duplicates.merge_figures)
@router.get("/anomalies", summary="A sensor's last readings of one attribute, each judged against its own past "
            "(spike, stuck, drift: robust z-scores), as sensor rules judge them (supervisors)")
async def get_anomalies(ctx: Ctx, user: CurrentStaff,
                        entity: Annotated[str, Query(min_length=1, max_length=512, pattern=PRINTABLE,
                                                     description="entity id")],
                        attr: Annotated[str, Query(min_length=1, max_length=300, pattern=PRINTABLE,
                                                   examples=["tiltAngle"],
                                                   description="attribute name (core @context) or IRI")],
                        tenant: Annotated[str, Query(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")] = "",
                        last: Annotated[int, Query(ge=1, le=MAX_SHOWN)] = 50) -> dict[str, Any]:
    if not user.has(Role.SUPERVISOR):
        raise PermissionDenied("for supervisors and administrators", message_zh="仅限督办人员和管理员",
                               code="ai.not_allowed")
    iri = store_of(ctx).core.expand(attr)
    return await ctx.db.read(lambda c: judged_readings(c, tenant=tenant, entity_id=entity, attribute=attr, iri=iri,
                                                       last=last))
