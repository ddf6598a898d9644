"""The public web app: market, registry, certificates, labels and the exchange's keys, as pages and as a
JSON read API (OpenAPI at /openapi.json), with live updates over Server-Sent Events.

It reads only the public read model (services/web/reader.py) and serves no write endpoint: every route
is a GET. Templates autoescape everything (project names, beneficiaries are participants' text); the
Content-Security-Policy allows scripts from this origin only, none inline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from services.web.reader import RELOAD, Broadcast, PublicReader, SearchBusyError
from services.web.search import MAX_QUERY, SEARCH_LIMIT

__all__ = ["CSP", "create_app"]

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _money(fen: int | None) -> str:
    return "-" if not fen else f"{fen // 100}.{fen % 100:02d}"


def _kg(grams: int) -> str:
    return f"{grams / 1000:,.1f}"  # a display only: the footprint itself stays integer grams


def _covering(checkpoints: list[dict[str, Any]], seq: int) -> dict[str, Any] | None:
    """The oldest signed checkpoint at or after `seq` among those published (newest first)."""
    covering = [c for c in checkpoints if c["seq"] >= seq]
    return covering[-1] if covering else None


def create_app(reader: PublicReader, broadcast: Broadcast) -> FastAPI:  # noqa: PLR0915 - the routes
    app = FastAPI(title="greenex public market and registry", version="1",
                  description="Read-only: prices in integer fen (1/100 CNY), quantities in tonnes, "
                              "times in ns since the epoch (UTC).",
                  # The interactive docs pages load their scripts from a CDN, inline: the CSP forbids both.
                  docs_url=None, redoc_url=None)  # fmt: skip
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.autoescape = True
    templates.env.filters["money"] = _money
    templates.env.filters["kg"] = _kg
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.update(_HEADERS)
        return response

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context)

    async def instrument_or_404(symbol: str) -> dict[str, Any]:
        doc = await reader.instrument(symbol)
        if doc is None:
            raise HTTPException(404, f"no instrument {symbol}")
        return doc

    async def certificate_or_404(cert_id: str) -> dict[str, Any]:
        doc = await reader.certificate(cert_id)
        if doc is None:
            raise HTTPException(404, f"no certificate {cert_id}")
        return doc

    async def search_or_429(q: str) -> list[dict[str, Any]]:
        try:
            return await reader.search(q)
        except SearchBusyError as busy:
            raise HTTPException(429, str(busy), {"Retry-After": "1"}) from None

    async def label_or_404(label_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        reg = await reader.registry()
        labels = [x for x in reg["labels"] if x["label_id"] == label_id]
        if not labels:  # a product's id finds its current label
            labels = [x for x in reg["labels"] if x["product"] == label_id and x["current"]]
        if not labels:
            raise HTTPException(404, f"no label {label_id}")
        label = labels[0]
        claims = [c for c in reg["claims"] if c["label_id"] == label["label_id"]]
        return label, claims

    # ---------------------------------------------------------------- JSON read API

    @app.get("/api/market", tags=["market"])
    async def api_market() -> dict[str, Any]:
        """Every instrument: its day (open, high, low, close, VWAP, volume, trades), best prices, band."""
        return await reader.market()

    @app.get("/api/instruments/{symbol}", tags=["market"])
    async def api_instrument(symbol: str) -> dict[str, Any]:
        """One instrument: L2 book, trade tape (newest first), candles (1m, 1h, 1d), daily statistics."""
        return await instrument_or_404(symbol)

    @app.get("/api/registry", tags=["registry"])
    async def api_registry() -> dict[str, Any]:
        """Projects, verification reports, issuances, buffer, reversals, surrenders, retirements, labels."""
        return await reader.registry()

    @app.get("/api/certificates", tags=["registry"])
    async def api_search(q: str = Query("", max_length=MAX_QUERY)) -> list[dict[str, Any]]:
        """Certificates by id, beneficiary (part of it) or serial (a number, or part of a label): the
        newest 50. 429 when searches are busy (try again in a second)."""
        return await search_or_429(q)

    @app.get("/api/certificates/{cert_id}", tags=["registry"])
    async def api_certificate(cert_id: str) -> dict[str, Any]:
        """One certificate, with the log entry that made it and the signed checkpoint covering it."""
        cert = await certificate_or_404(cert_id)
        covering = _covering((await reader.checkpoints())["checkpoints"], cert["seq"])
        return cert | {"checkpoint": covering}

    @app.get("/api/labels/{label_id}", tags=["registry"])
    async def api_label(label_id: str) -> dict[str, Any]:
        """A product label (by its id, or the product's id for its current label) and its claims."""
        label, claims = await label_or_404(label_id)
        return label | {"claims": claims}

    @app.get("/api/checkpoints", tags=["trust"])
    async def api_checkpoints() -> dict[str, Any]:
        """The exchange's public key and the newest signed checkpoints of the log."""
        return await reader.checkpoints()

    @app.get("/api/stream", tags=["market"])
    async def api_stream(instrument: str = Query("", max_length=64)) -> StreamingResponse:
        """Server-Sent Events, batched every 250 ms: one `data:` JSON per change (market updates for
        `instrument`, a listed symbol, or every instrument if empty; registry and checkpoint changes).
        404 for an instrument that is not listed, 503 when the server holds as many live pages as it
        serves."""
        if instrument and await reader.instrument(instrument) is None:
            raise HTTPException(404, f"no instrument {instrument}")
        queue = broadcast.subscribe(instrument)
        if queue is None:
            raise HTTPException(503, "too many live pages open: try again later", {"Retry-After": "30"})
        no_buffering = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(_events(queue), media_type="text/event-stream", headers=no_buffering)

    async def _events(queue: asyncio.Queue[bytes]) -> AsyncIterator[bytes]:
        # The server cancels this generator when the client goes (uvicorn's ASGI 2.3 disconnect message).
        try:
            yield b"retry: 2000\n\n"
            while True:
                chunk = await queue.get()
                yield chunk
                if chunk == RELOAD:
                    return
        finally:
            broadcast.unsubscribe(queue)

    # ---------------------------------------------------------------- pages

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def overview(request: Request) -> HTMLResponse:
        market, reg = await reader.market(), await reader.registry()
        return page(request, "overview.html", market=market, retirements=reg["retirements"][:10])

    @app.get("/market/{symbol}", response_class=HTMLResponse, include_in_schema=False)
    async def market_page(request: Request, symbol: str) -> HTMLResponse:
        return page(request, "market.html", doc=await instrument_or_404(symbol))

    @app.get("/registry", response_class=HTMLResponse, include_in_schema=False)
    async def registry_page(request: Request, q: str = Query("", max_length=MAX_QUERY)) -> HTMLResponse:
        reg = await reader.registry()
        found = await search_or_429(q) if q else None
        return page(request, "registry.html", reg=reg, q=q, found=found, limit=SEARCH_LIMIT)

    @app.get("/certificates/{cert_id}", response_class=HTMLResponse, include_in_schema=False)
    async def certificate_page(request: Request, cert_id: str) -> HTMLResponse:
        cert = await certificate_or_404(cert_id)
        trust = await reader.checkpoints()
        return page(request, "certificate.html", c=cert, trust=trust,
                    checkpoint=_covering(trust["checkpoints"], cert["seq"]))  # fmt: skip

    @app.get("/labels/{label_id}", response_class=HTMLResponse, include_in_schema=False)
    async def label_page(request: Request, label_id: str) -> HTMLResponse:
        label, claims = await label_or_404(label_id)
        return page(request, "label.html", label=label, claims=claims, coverage=_coverage(label, claims))

    @app.get("/labels/{label_id}/badge.svg", include_in_schema=False)
    async def badge(request: Request, label_id: str) -> Response:
        label, claims = await label_or_404(label_id)
        svg = templates.get_template("badge.svg").render(label=label, coverage=_coverage(label, claims))
        return Response(svg, media_type="image/svg+xml")

    @app.get("/trust", response_class=HTMLResponse, include_in_schema=False)
    async def trust_page(request: Request) -> HTMLResponse:
        return page(request, "trust.html", trust=await reader.checkpoints())

    return app


def _coverage(label: dict[str, Any], claims: list[dict[str, Any]]) -> dict[str, Any]:
    """How much of the label's footprint standing claims cover; "carbon neutral" only when a standing
    claim covers every unit shipped in its period."""
    standing = [c for c in claims if not c["superseded"]]
    neutral = any(c["units_shipped"] and c["units"] == c["units_shipped"] for c in standing)
    required = sum(c["required_tonnes"] for c in standing)
    covered = sum(c["covered_tonnes"] for c in standing)
    return {"neutral": neutral, "required": required, "covered": covered, "claims": len(standing)}
