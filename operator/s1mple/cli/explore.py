"""`s1mple explore [STORE]`: a small browser over a result store (``./runs`` by default, or ``s3://...``).

It lists every optimization and variant test in the store (kind, name, counts, best, date), with live
progress for a sweep still running, and opens their reports (built on the fly when a folder has none).
It listens on 127.0.0.1 by default and serves only what is inside the store: a report is served only
for a folder the listing found, and any request path with ``..`` (plain or percent-encoded, once or
twice) is refused.  aiohttp: the controller's framework already (kopf), asyncio, no extra server.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import unquote

DEFAULT_PORT = 8765


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "explore",
        help="browse the optimizations and variant tests of a result store, with their reports",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "store", nargs="?", default="runs", help="result store: a folder (default ./runs) or s3://"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)"
    )
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)"
    )
    p.set_defaults(func=explore)


def outside_store(raw_path: str) -> bool:
    """Whether a request path tries to leave the store: a ``..`` or ``.`` segment, a backslash or NUL,
    after decoding percent-escapes repeatedly (``%2e%2e``, ``%252e%252e``...)."""
    path, seen = raw_path, set()
    while path not in seen:
        seen.add(path)
        if "\\" in path or "\x00" in path:
            return True
        if any(seg in ("..", ".") for seg in path.split("?")[0].split("/")):
            return True
        path = unquote(path)
    return False


def make_app(store: Any) -> Any:
    import asyncio  # here, not at the top: every `s1mple` command imports this module to register it

    from aiohttp import web

    from s1mple.meta.report import REPORT_KEY, ReportError, build_report
    from s1mple.meta.report.catalog import Catalog, folder_store
    from s1mple.meta.report.render import page

    catalog = Catalog(store)
    lock = asyncio.Lock()  # one store scan at a time (the page polls)

    async def listing() -> list[dict[str, Any]]:
        async with lock:
            return await asyncio.to_thread(catalog.as_json)

    @web.middleware
    async def inside_store(request: web.Request, handler: Any) -> web.StreamResponse:
        if outside_store(request.raw_path):
            return web.Response(status=400, text="refused: the path leaves the store\n")
        return await handler(request)

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page("explore.html.j2", store=store.uri), content_type="text/html")

    async def research(request: web.Request) -> web.Response:
        return web.json_response({"store": store.uri, "research": await listing()})

    async def report(request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        known = {r["folder"]: r for r in await listing()}
        if folder not in known:
            raise web.HTTPNotFound(text=f"no optimization or variant test {folder!r} in {store.uri}\n")
        sub = folder_store(store, "" if folder == "." else folder)
        try:
            if known[folder]["report"]:
                body = await asyncio.to_thread(sub.get_bytes, REPORT_KEY)
            elif known[folder]["state"] == "finished":
                body = await asyncio.to_thread(build_report, sub)
            else:
                raise web.HTTPNotFound(text=f"{folder}: still running, no report yet\n")
        except ReportError as exc:
            raise web.HTTPNotFound(text=f"{exc}\n") from None
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    async def no_icon(request: web.Request) -> web.Response:
        # a served report asks for one (the page itself links nothing): no icon, rather than a 404 in the
        # browser's console
        return web.Response(status=204)

    app = web.Application(middlewares=[inside_store])
    app.router.add_get("/", index)
    app.router.add_get("/favicon.ico", no_icon)
    app.router.add_get("/api/research", research)
    app.router.add_get("/report/{folder:.+}", report)
    return app


def explore(args: argparse.Namespace) -> int:
    import asyncio

    from aiohttp import web

    from s1mple_engine.store import open_store

    store = open_store(args.store)

    async def serve() -> None:
        runner = web.AppRunner(make_app(store))
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        print(f"s1mple explore: {store.uri} on http://{host}:{port}/ (Ctrl-C to stop)", file=sys.stderr)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    asyncio.run(serve())
    return 0
