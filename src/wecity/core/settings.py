"""Settings read once from the environment (and an optional `.env`), validated at start."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from wecity.core.errors import ConfigurationError
from wecity.core.limits import Rule, parse_rule

NGSILD_AUTH_MODES = ("required", "writes", "off")
# The most files one form may carry (Open311 media; the portal's forms take fewer): with
# max_upload_bytes it bounds a multipart body.
UPLOAD_FILES = 10
# Rate limits (wecity.core.limits) by name, each set by WECITY_RATE_LIMIT_<NAME>, and what each counts.
RATE_LIMITS = {
    "open311": "300/minute",  # Open311 POSTs per API key
    "ngsild": "6000/minute",  # NGSI-LD writes per API key (or staff session)
    "ngsild_public": "600/minute",  # NGSI-LD reads without credentials (WECITY_NGSILD_AUTH=writes) per client address
    "ngsild_remote": "6000/minute",  # notifications from context sources (forwarded subscriptions) per client address
    "portal_report": "10/minute,200/day",  # the portal's report form per client address
    "public_map": "120/minute",  # the public map of reports (GeoJSON) per client address
    "portal_voice": "20/minute,200/day",  # after reporting: updates, 催办, "still not fixed", +1, per client address
    "case_rating": "10/minute,100/day",  # a reporter's rating (好差评) by tracking code, per client address
    "portal_code": "5/minute,50/day",  # "my reports" SMS code requests per client address
    "portal_verify": "10/minute,100/day",  # SMS code guesses per client address (each code takes 5 at most)
    "sms_phone": "2/minute,10/day",  # SMS codes per phone number
    "sms_total": "1000/hour",  # SMS codes of the whole installation
    "services_read": "600/minute",  # the public catalogue of matters per client address
    "certificate_verify": "60/minute,2000/day",  # certificate checks per client address (no enumeration)
    "services_write": "60/minute,1000/day",  # an applicant's changes (drafts, submissions, uploads) per citizen
    "data_read": "600/minute",  # the data catalogue (CKAN calls, DCAT export, search) per client address
    "ai_suggest": "120/minute",  # category suggestions (the report form asks as the citizen types) per client address
    "ai_figures": "30/minute",  # hot spots and forecasts (seconds of CPU each on a big city) per staff member
    "geo_search": "120/minute",  # address search and reverse geocoding (the report form asks) per client address
    "basemap": "1200/minute",  # the base map's style and tile ranges (a map asks for dozens as it moves) per client address
}


def default_rate_limits() -> dict[str, Rule]:
    return {name: parse_rule(text) for name, text in RATE_LIMITS.items()}


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    media_dir: Path
    secret_key: str
    mqtt_url: str | None = None
    var_dir: Path = Path("var")
    # Duplicate merge (并单): a report joins an open case of the same category this close, this recent.
    merge_radius_m: float = 50.0
    merge_window_hours: float = 72.0
    max_upload_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 64_000_000  # a 48 MP phone photo (8064x6048) fits
    # Threads that decode uploaded photos, apart from those that serve the database.
    image_workers: int = 1
    # Request bodies, counted as they arrive (wecity.core.bodylimit): JSON (and any body that is not a
    # form), URL-encoded forms, and NGSI-LD batch operations and temporal representations (up to 10,000
    # entities a batch). A multipart upload may carry UPLOAD_FILES files of max_upload_bytes and its fields.
    max_json_bytes: int = 1024 * 1024
    max_form_bytes: int = 64 * 1024
    max_batch_bytes: int = 16 * 1024 * 1024
    # Temporal instances one NGSI-LD answer carries per entity before it is partial (206, Content-Range).
    ngsild_temporal_instances: int = 1000
    run_background: bool = True
    tile_url: str | None = None
    # The address citizens and staff reach the platform at (https://wecity.example.gov.cn): links in SMS,
    # e-mail and group-robot messages are made absolute with it. Unset: the messages carry the path only.
    public_url: str | None = None
    # Notifications: SMTP server (unset: e-mail is written to the log), the webhook signing secret
    # (unset: derived from secret_key), attempts before a message is dead-lettered.
    smtp_url: str | None = None
    webhook_secret: str | None = None
    outbox_max_attempts: int = 8
    # Working hours of the "working" SLA calendar, in the city's local time (its jurisdiction's zone).
    work_hours: str = "09:00-12:00,13:30-17:30"
    # Who may use the NGSI-LD API (/ngsi-ld): "required" (an API key or a staff sign-in for every request),
    # "writes" (reads are open, changes need credentials) or "off" (a closed network, conformance testing).
    ngsild_auth: str = "required"
    # Requests to user-given URLs (notifications, @context fetches, webhooks; wecity.core.outbound): the
    # internal networks and host names they may reach after all (all other internal ones are refused),
    # their total timeout in seconds, and the largest @context document fetched.
    outbound_allow: tuple[str, ...] = ()
    outbound_timeout: float = 10.0
    context_max_bytes: int = 1024 * 1024
    # Who may read /metrics: with a token, whoever sends `Authorization: Bearer <token>` (a Prometheus on
    # another machine); without one, only a client on this machine that no proxy forwarded.
    metrics_token: str | None = None
    # The department that coordinates data sharing (the city's 政务数据主管部门): requests answered late are
    # escalated to it, and it sees every department's requests and grants.
    data_coordinator: str = "zhengwu"
    # A demo city (`wecity demo`): with no SMS gateway to send them, one-time codes are shown on the page
    # that asked for them, so a visitor can sign in as a demo citizen. Never set for a real city.
    demo: bool = False
    rate_limits: dict[str, Rule] = field(default_factory=default_rate_limits)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def max_multipart_bytes(self) -> int:
        return self.max_upload_bytes * UPLOAD_FILES + self.max_form_bytes

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _load_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _normalise_database_url(url: str) -> str:
    # People write postgres:// or postgresql://; the platform's driver is psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_settings(env: dict[str, str] | None = None, *, cwd: Path | None = None) -> Settings:
    """Build settings from `env` (default: the process environment over `.env`).

    Raises ConfigurationError naming the setting and the reason when a value is unusable.
    """
    cwd = cwd or Path.cwd()
    values = _load_dotenv(cwd / ".env")
    values.update(os.environ if env is None else env)

    var_dir = Path(values.get("WECITY_VAR_DIR", str(cwd / "var")))
    database_url = _normalise_database_url(
        values.get("WECITY_DATABASE_URL") or f"sqlite:///{var_dir / 'wecity.db'}"
    )
    scheme = database_url.split(":", 1)[0]
    if scheme not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise ConfigurationError(
            "WECITY_DATABASE_URL",
            f"unsupported database {scheme!r}; use sqlite:///path or postgresql://user:pass@host/db",
        )

    media_dir = Path(values.get("WECITY_MEDIA_DIR", str(var_dir / "media")))

    mqtt_url = values.get("WECITY_MQTT_URL") or None
    if mqtt_url:
        parsed = urlparse(mqtt_url)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise ConfigurationError("WECITY_MQTT_URL", "expected mqtt://host[:port] or mqtts://host[:port]")

    secret_key = values.get("WECITY_SECRET_KEY") or _kept_secret_key(var_dir)
    if len(secret_key) < 32:
        raise ConfigurationError("WECITY_SECRET_KEY", "must be at least 32 characters")

    def number(name: str, default: float, *, minimum: float = 0) -> float:
        raw = values.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationError(name, f"{raw!r} is not a number") from None
        if value < minimum:
            raise ConfigurationError(name, f"must be at least {minimum}")
        return value

    smtp_url = values.get("WECITY_SMTP_URL") or None
    if smtp_url:
        parsed = urlparse(smtp_url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ConfigurationError("WECITY_SMTP_URL",
                                     "expected smtp://[user:pass@]host[:port][?from=addr&starttls=1] or smtps://...")
    work_hours = values.get("WECITY_WORK_HOURS") or "09:00-12:00,13:30-17:30"
    from wecity.core.errors import ValidationFailed
    from wecity.core.worktime import parse_hours

    try:
        parse_hours(work_hours)
    except ValidationFailed as exc:
        raise ConfigurationError("WECITY_WORK_HOURS", exc.message) from None

    ngsild_auth = values.get("WECITY_NGSILD_AUTH") or "required"
    if ngsild_auth not in NGSILD_AUTH_MODES:
        raise ConfigurationError("WECITY_NGSILD_AUTH", f"expected one of {', '.join(NGSILD_AUTH_MODES)}")
    metrics_token = values.get("WECITY_METRICS_TOKEN") or None
    if metrics_token is not None and len(metrics_token) < 16:
        raise ConfigurationError("WECITY_METRICS_TOKEN", "must be at least 16 characters")
    public_url = (values.get("WECITY_PUBLIC_URL") or "").rstrip("/") or None
    if public_url:
        parsed = urlparse(public_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
            raise ConfigurationError("WECITY_PUBLIC_URL", "expected http(s)://host[:port][/path]")
    return Settings(
        database_url=database_url,
        media_dir=media_dir,
        secret_key=secret_key,
        mqtt_url=mqtt_url,
        var_dir=var_dir,
        merge_radius_m=number("WECITY_MERGE_RADIUS_M", 50.0),
        merge_window_hours=number("WECITY_MERGE_WINDOW_HOURS", 72.0),
        max_upload_bytes=int(number("WECITY_MAX_UPLOAD_BYTES", 10 * 1024 * 1024, minimum=1024)),
        max_image_pixels=int(number("WECITY_MAX_IMAGE_PIXELS", 64_000_000, minimum=1)),
        image_workers=int(number("WECITY_IMAGE_WORKERS", max(1, (os.cpu_count() or 2) // 2), minimum=1)),
        max_json_bytes=int(number("WECITY_MAX_JSON_BYTES", 1024 * 1024, minimum=1024)),
        max_form_bytes=int(number("WECITY_MAX_FORM_BYTES", 64 * 1024, minimum=1024)),
        max_batch_bytes=int(number("WECITY_MAX_BATCH_BYTES", 16 * 1024 * 1024, minimum=1024)),
        ngsild_temporal_instances=int(number("WECITY_NGSILD_TEMPORAL_INSTANCES", 1000, minimum=1)),
        run_background=values.get("WECITY_RUN_BACKGROUND", "1") not in ("0", "false", "no"),
        tile_url=values.get("WECITY_TILE_URL") or None,
        smtp_url=smtp_url,
        webhook_secret=values.get("WECITY_WEBHOOK_SECRET") or None,
        outbox_max_attempts=int(number("WECITY_OUTBOX_MAX_ATTEMPTS", 8, minimum=1)),
        outbound_allow=_outbound_allow(values.get("WECITY_OUTBOUND_ALLOW", "")),
        outbound_timeout=number("WECITY_OUTBOUND_TIMEOUT", 10.0, minimum=0.1),
        context_max_bytes=int(number("WECITY_CONTEXT_MAX_BYTES", 1024 * 1024, minimum=1024)),
        work_hours=work_hours,
        ngsild_auth=ngsild_auth,
        metrics_token=metrics_token,
        data_coordinator=values.get("WECITY_DATA_COORDINATOR") or "zhengwu",
        public_url=public_url,
        rate_limits=_rate_limits(values),
    )


def _rate_limits(values: dict[str, str]) -> dict[str, Rule]:
    """RATE_LIMITS with WECITY_RATE_LIMIT_<NAME> applied; an unknown name is refused, as it is a typo."""
    rules = default_rate_limits()
    for variable, raw in values.items():
        if not variable.startswith("WECITY_RATE_LIMIT_"):
            continue
        name = variable.removeprefix("WECITY_RATE_LIMIT_").lower()
        if name not in rules:
            known = ", ".join("WECITY_RATE_LIMIT_" + n.upper() for n in RATE_LIMITS)
            raise ConfigurationError(variable, f"no such rate limit; the known ones are {known}")
        try:
            rules[name] = parse_rule(raw)
        except ValueError as exc:
            raise ConfigurationError(variable, str(exc)) from None
    return rules


def _outbound_allow(raw: str) -> tuple[str, ...]:
    """Networks (10.20.0.0/16, 127.0.0.1, fd00::/8) and host names, separated by commas."""
    import ipaddress
    import re

    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", item):
                raise ConfigurationError("WECITY_OUTBOUND_ALLOW",
                                         f"{item!r} is neither a network (10.0.0.0/8) nor a host name") from None
    return items


def _kept_secret_key(var_dir: Path) -> str:
    """Generate the secret key on first run and keep it, so sessions survive restarts."""
    path = var_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    try:
        var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # O_EXCL: two processes starting together keep the same key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key
    except FileExistsError:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError("WECITY_SECRET_KEY", f"unset, and cannot keep a generated one in {path}: {exc}") from exc
