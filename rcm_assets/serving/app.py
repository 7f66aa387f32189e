"""The pre-submission scoring service: FastAPI routes, auth, limits, logs, metrics and the spool.

Routes: `POST /v1/score` (one claim or up to 1,000), `POST /v1/score/x12` (an 837P/837I transaction),
`POST /v1/reload` (re-read the bundle and the champion history now), `GET /healthz` (the process answers),
`GET /readyz` (a state is loaded: bundle, models), `GET /metrics` (Prometheus), `/docs` (OpenAPI).

Safe by default: a bearer token (RCM_API_TOKEN) on every /v1 route whenever one is configured, and always
outside the demo environment (`rcm serve` refuses to start without one unless RCM_ENV=demo); bodies over the limit
answer 413, a bad field 422 naming it, an unknown route 404, and an unexpected error 500 with the request
id only (never a traceback). Logs are JSON lines with the request id and never a claim's content; the
spool keeps, per scored claim, its id and version and the answer (no other claim content).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from rcm_assets.defs.serving import SPOOL_COLUMNS, spool_dir
from rcm_assets.lib import x12
from rcm_assets.serving.bundle import ServeConfig, ServingState, StateHolder
from rcm_assets.serving.schemas import MAX_BATCH, ClaimIn, ScoreRequest, ScoreResponse, claim_fields
from rcm_assets.serving.scorer import RejectedClaims, results, score_requests

log = logging.getLogger("rcm.serve")
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROUTES = {"/v1/score", "/v1/score/x12", "/v1/reload", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"}


def _stamp_request_id(record: logging.LogRecord) -> bool:
    """Every record of the service carries the request id it was logged under (read when it is logged)."""
    if not hasattr(record, "request_id"):
        record.request_id = request_id_var.get()
    return True


log.addFilter(_stamp_request_id)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message (callers log no claim content)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name,
               "request_id": getattr(record, "request_id", None) or request_id_var.get(),
               "msg": record.getMessage()}
        out.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__  # the class only: a message may quote a value
        return json.dumps(out, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in ("rcm.serve", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


class Metrics:
    """Prometheus metrics of one app (its own registry, so two apps in one process do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram("rcm_serve_request_seconds", "Request latency by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.requests = Counter("rcm_serve_requests_total", "Requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.errors = Counter("rcm_serve_errors_total", "Requests answered with an error, by route and kind",
                              ["route", "kind"], registry=self.registry)
        self.claims = Counter("rcm_serve_claims_scored_total", "Claims scored, by who scored and model version",
                              ["scored_by", "model_version"], registry=self.registry)
        self.model = Gauge("rcm_serve_model_info", "The model serving now (1) and before (0)",
                           ["model_name", "model_version", "scored_by", "feature_version", "serving_day"],
                           registry=self.registry)
        self.ready = Gauge("rcm_serve_ready", "1 when a state is loaded", registry=self.registry)
        self.reloads = Counter("rcm_serve_reloads_total", "State loads swapped in", registry=self.registry)
        self.call_claims = Histogram("rcm_serve_scoring_call_claims", "Claims per scoring call (requests "
                                     "waiting are scored together)", buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
                                     registry=self.registry)

    def serving(self, state: ServingState) -> None:
        for sample in list(self.model.collect()[0].samples):
            self.model.labels(**sample.labels).set(0)
        self.model.labels(model_name=state.model.stamp["model_name"], model_version=str(state.model.version),
                          scored_by=state.scored_by, feature_version=state.resolved.versions["feature_version"],
                          serving_day=state.day).set(1)
        self.ready.set(1)
        self.reloads.inc()


class Spool:
    """Appends one JSON line per scored claim to <spool>/dt=<UTC day>/<host>-<pid>.jsonl."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = f"{socket.gethostname()}-{os.getpid()}.jsonl"
        self._lock = threading.Lock()

    def write(self, rows: list[dict[str, Any]]) -> None:
        day = datetime.now(UTC).date().isoformat()
        target = self.folder / f"dt={day}"
        text = "".join(json.dumps({k: r.get(k) for k in SPOOL_COLUMNS}) + "\n" for r in rows)
        with self._lock:
            target.mkdir(parents=True, exist_ok=True)
            with open(target / self.name, "a") as f:
                f.write(text)


class Coalescer:
    """Requests waiting while a scoring call runs are scored together in the next call (up to MAX_BATCH
    claims): the path's fixed cost (contract, features, models, drivers) is paid once per call, not per
    request, so the service keeps up with many single-claim requests on two cores."""

    def __init__(self, holder: StateHolder, metrics: Metrics, max_claims: int = MAX_BATCH) -> None:
        self.holder, self.metrics, self.max_claims = holder, metrics, max_claims
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._work(), name="rcm-coalescer")

    async def submit(self, claims: list[dict[str, Any]], batch: bool, rid: str):
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((claims, batch, rid, future))
        return await future

    async def _work(self) -> None:
        while True:
            items = [await self.queue.get()]
            size = len(items[0][0])
            while not self.queue.empty() and size + len(self.queue._queue[0][0]) <= self.max_claims:
                items.append(self.queue.get_nowait())
                size += len(items[-1][0])
            state = self.holder.state
            live = [it for it in items if not it[3].done()]  # a request that timed out is not scored
            if not live:
                continue
            self.metrics.call_claims.observe(sum(len(it[0]) for it in live))
            try:
                if state is None:
                    raise ServeError(503, f"not ready: {self.holder.error or 'loading'}")
                outs = await run_in_threadpool(score_requests, state, [(c, b, r) for c, b, r, _ in live])
            except Exception as exc:
                outs = [exc] * len(live)
            for (_, _, _, future), out in zip(live, outs, strict=True):
                if future.done():
                    continue
                if isinstance(out, Exception):
                    future.set_exception(out)
                else:
                    future.set_result((state, out))


class ServeError(Exception):
    def __init__(self, status: int, error: str, fields: list[dict[str, str]] | None = None):
        super().__init__(error)
        self.status, self.error, self.fields = status, error, fields or []


def _validation_fields(exc: ValidationError, batch: bool) -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [p for p in err["loc"] if p not in ("claim", "batch")]
        path = ""
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        out.append({"field": path or ("claims" if batch else "body"), "problem": err["msg"]})
    return out


_REQUEST = TypeAdapter(ScoreRequest)


def create_app(resources: dict[str, Any], config: ServeConfig, holder: StateHolder | None = None) -> FastAPI:
    """The service over `resources` (lake, features, mlflow_tracking as `build_resources` gives them)."""
    metrics = Metrics()
    holder = holder or StateHolder(resources, config, on_reload=metrics.serving)
    if holder.on_reload is None:
        holder.on_reload = metrics.serving
    spool = Spool(Path(config.spool_dir) if config.spool_dir else spool_dir())
    coalescer = Coalescer(holder, metrics)

    async def lifespan(app: FastAPI):
        coalescer.start()
        loader = threading.Thread(target=lambda: (holder.refresh(force=True), holder.start()),
                                  name="rcm-initial-load", daemon=True)
        loader.start()
        yield
        loader.join(timeout=10)  # a first load still running finishes (bounded) before the app is gone
        holder.stop()
        coalescer.task.cancel()

    app = FastAPI(title="rcm_assets pre-submission scoring", version="1",
                  description="Denial probability, decision, likely reason and findings for a claim before it "
                              "is sent: the nightly batch's own features, champion, reference tables and rules.",
                  lifespan=lifespan)
    app.state.holder, app.state.metrics = holder, metrics

    def require_token(request: Request) -> None:
        if not config.token:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), config.token.encode()):
            raise ServeError(401, "a valid bearer token is required (Authorization: Bearer <RCM_API_TOKEN>)")

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            raise ServeError(413, f"body over the limit of {config.max_body_bytes} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > config.max_body_bytes:
                raise ServeError(413, f"body over the limit of {config.max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def current() -> ServingState:
        state = holder.state
        if state is None:
            raise ServeError(503, f"not ready: {holder.error or 'loading the serving bundle and models'}")
        return state

    async def answer(request: Request, route: str, claims: list[dict[str, Any]], batch: bool) -> dict[str, Any]:
        current()
        rid = request_id_var.get()
        try:
            state, scored = await asyncio.wait_for(coalescer.submit(claims, batch, rid),
                                                   timeout=config.request_timeout_seconds)
        except TimeoutError:
            raise ServeError(503, f"scoring timed out after {config.request_timeout_seconds:.1f} s") from None
        except RejectedClaims as exc:
            raise ServeError(422, "claims the silver contract refuses", exc.problems) from None
        out = results(scored)
        now = datetime.now(UTC).isoformat()
        spool.write([{**r, "request_id": rid, "route": route, "serving_day": state.day, "scored_at": now}
                     for r in out])
        metrics.claims.labels(scored_by=state.scored_by, model_version=str(state.model.version)).inc(len(out))
        request.state.log_fields = {"claims": len(out), "scored_by": state.scored_by,
                                    "model_version": str(state.model.version)}
        return {"request_id": rid, "serving_day": state.day, "scored_by": state.scored_by,
                "scored_by_reason": state.scored_by_reason, "model_name": state.model.stamp["model_name"],
                "model_version": str(state.model.version),
                "feature_version": state.resolved.versions["feature_version"], "results": out}

    @app.post("/v1/score", response_model=ScoreResponse, tags=["score"],
              summary="Score one claim, or {'claims': [...]} up to 1,000")
    async def score_json(request: Request) -> dict[str, Any]:
        require_token(request)
        body = await read_body(request)
        try:
            raw = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ServeError(422, f"the body is not JSON ({type(exc).__name__})",
                             [{"field": "body", "problem": "not JSON"}]) from None
        batch = isinstance(raw, dict) and "claims" in raw
        try:
            parsed = _REQUEST.validate_python(raw)
        except ValidationError as exc:
            raise ServeError(422, "invalid claim", _validation_fields(exc, batch)) from None
        claims = parsed.claims if batch else [parsed]
        return await answer(request, "/v1/score", [c.model_dump() for c in claims], batch)

    @app.post("/v1/score/x12", response_model=ScoreResponse, tags=["score"],
              summary="Score the claims of an X12 837P/837I interchange (the body, as sent)",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/edi-x12": {"schema": {"type": "string"}}}}})
    async def score_x12(request: Request) -> dict[str, Any]:
        require_token(request)
        body = await read_body(request)
        state = current()
        try:
            parsed = await run_in_threadpool(x12.read_x12, body, state.resolved.config.facility_tz, "claims")
        except x12.X12Error as exc:
            raise ServeError(422, f"not an acceptable 837: {exc}", [{"field": "body", "problem": str(exc)}]) from None
        if parsed.rejected:
            raise ServeError(422, "transaction set(s) refused",
                             [{"field": "body", "problem": str(p)} for p in parsed.rejected])
        if parsed.claims.empty:
            raise ServeError(422, "the 837 holds no claim to score", [{"field": "body", "problem": "no claims"}])
        if len(parsed.claims) > MAX_BATCH:
            raise ServeError(422, f"at most {MAX_BATCH} claims per request", [{"field": "body", "problem": "too many"}])
        fields = claim_fields()
        rows = parsed.claims.reindex(columns=fields).astype(object).where(parsed.claims.reindex(columns=fields).notna(),
                                                                          None).to_dict("records")
        try:
            claims = [ClaimIn.model_validate(r).model_dump() for r in rows]
        except ValidationError as exc:
            raise ServeError(422, "invalid claim in the 837", _validation_fields(exc, True)) from None
        return await answer(request, "/v1/score/x12", claims, True)

    @app.post("/v1/reload", tags=["operations"], summary="Re-read the bundle and the champion history now")
    async def reload(request: Request) -> dict[str, Any]:
        require_token(request)
        changed = await run_in_threadpool(holder.refresh)
        state = holder.state
        return {"request_id": request_id_var.get(), "reloaded": changed, "error": holder.error,
                "model_version": str(state.model.version) if state else None,
                "scored_by": state.scored_by if state else None}

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        state = holder.state
        if state is None:
            return JSONResponse({"ready": False, "reason": holder.error or "loading"}, status_code=503)
        return JSONResponse({"ready": True, "serving_day": state.day, "stale_bundle": state.stale,
                             "scored_by": state.scored_by, "scored_by_reason": state.scored_by_reason,
                             "model_version": str(state.model.version), "last_reload_error": holder.error,
                             **{k: v for k, v in state.resolved.versions.items() if k != "serving_day"}})

    @app.get("/metrics", tags=["operations"])
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def request_context(request: Request, call_next):
        given = request.headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        start = time.perf_counter()
        route = request.url.path if request.url.path in ROUTES else "other"
        try:
            response = await call_next(request)
        except Exception as exc:  # never a traceback to the client; the class only in the log
            log.error("unhandled error", exc_info=(type(exc), exc, None))
            response = JSONResponse({"request_id": rid, "error": "internal error"}, status_code=500)
        elapsed = time.perf_counter() - start
        response.headers["x-request-id"] = rid
        metrics.latency.labels(route=route).observe(elapsed)
        metrics.requests.labels(route=route, status=str(response.status_code)).inc()
        if response.status_code >= 400:
            metrics.errors.labels(route=route, kind=str(response.status_code)).inc()
        fields = {"method": request.method, "route": route, "status": response.status_code,
                  "duration_ms": round(elapsed * 1000, 2), **getattr(request.state, "log_fields", {})}
        log.info("request", extra={"fields": fields})
        request_id_var.reset(token)
        return response

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> JSONResponse:
        body = {"request_id": request_id_var.get(), "error": exc.error}
        if exc.fields:
            body["fields"] = exc.fields
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"request_id": request_id_var.get(), "error": str(exc.detail)},
                            status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=(type(exc), exc, None))
        return JSONResponse({"request_id": request_id_var.get(), "error": "internal error"}, status_code=500)

    def openapi() -> dict[str, Any]:
        """The generated schema, with the claim models of the registry as /v1/score's request body."""
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        body = _REQUEST.json_schema(ref_template="#/components/schemas/{model}")
        schema.setdefault("components", {}).setdefault("schemas", {}).update(body.pop("$defs", {}))
        schema["paths"]["/v1/score"]["post"]["requestBody"] = {
            "required": True, "content": {"application/json": {"schema": body}}}
        for path in ("/v1/score", "/v1/score/x12", "/v1/reload"):
            schema["paths"][path]["post"]["security"] = [{"bearer": []}]
        schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
