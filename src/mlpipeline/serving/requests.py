"""Requests read strictly, and bad ones answered clearly: the body limit (413), every body the server cannot
take as JSON one 422 naming why (never a 500 or an undocumented 400), field-level 422s, and 405s that say what is
allowed.

FastAPI parses a JSON body with ``json.loads`` and answers anything but a syntax error with a bare
400 "There was an error parsing the body". Here every such case is a syntax error with its reason
(``JSON decode error: ...``): bytes that are not UTF-8, a number longer than Python reads, nesting deeper than it
reads, a key given twice in one object (JSON leaves that open; taking the last one silently would answer a
question the client did not ask), and text with a lone UTF-16 surrogate (``"\\ud800"``: valid JSON escapes, but no
character, so it could be neither matched nor logged).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

# A \u escape of a UTF-16 surrogate (d800-dfff): only then can a parsed string hold a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _RefusedError(f"key {key!r} is given twice in one object: send each field once")
        seen.add(key)
    raise AssertionError("unreachable: fewer keys than pairs means one repeats")


class _RefusedError(ValueError):
    pass


def strict_json(body: bytes) -> Any:
    """The body parsed as JSON, or ``json.JSONDecodeError`` saying why it cannot be."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"the body is not UTF-8 text (byte {body[exc.start]:#04x})", "", exc.start) from exc
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError:
        raise
    except _RefusedError as exc:
        raise json.JSONDecodeError(str(exc), text, 0) from exc
    except RecursionError as exc:
        raise json.JSONDecodeError("nested deeper than this server reads: send a flatter body", text, 0) from exc
    except ValueError as exc:  # an integer past Python's digit limit
        limit = sys.get_int_max_str_digits()
        raise json.JSONDecodeError(f"a number with more than {limit} digits: not a value to send", text, 0) from exc
    if _SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(value):
        raise json.JSONDecodeError("text holds a lone UTF-16 surrogate (\\ud800-\\udfff): not a character", text, 0)
    return value


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is read by :func:`strict_json` (set as the app's ``router.route_class``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes with 413, by header or while reading a streamed body.

    The body is read here (never more than ``limit`` + one chunk) and replayed to the app, which would buffer it
    anyway; a body over the limit is never handed on.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Any) -> None:
        body = b'{"detail":"request body larger than %d bytes (MLPIPELINE_SERVE_MAX_BODY_BYTES)"}' % self.limit
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def _json_safe(value: Any) -> Any:
    """NaN and infinities as strings, so an error that quotes them is still valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _quoted(value: Any) -> Any:
    """The bad input, for the 422 to quote; a value nested too deep to walk is described, not quoted."""
    try:
        return _json_safe(value)
    except RecursionError:
        return "(nested too deep to quote)"


class ASCIIJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped: any string a request held renders (even a lone surrogate)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an HTTP error, except that a 405's Allow lists every method of the path (Starlette
    names only those of the first route it matched: GET /ab hid POST /ab)."""
    from fastapi.exception_handlers import http_exception_handler
    from starlette.routing import Match, Route

    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allowed: set[str] = set()
        # The routes as their routers made them (FastAPI keeps an included router's routes behind private types).
        for route in [*request.app.router.routes, *getattr(request.app.state, "routes", [])]:
            if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] != Match.NONE:
                allowed |= route.methods
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(allowed))}
    return await http_exception_handler(request, exc)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field (``loc``), what is wrong (``msg``) and the value given."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    names: list[str] = getattr(request.app.state, "row_names", [])
    detail = [
        {
            "loc": list(e.get("loc", ())),
            "msg": _suggested(e, names) + (f": {e['ctx']['error']}" if e.get("type") == "json_invalid" else ""),
            "type": e.get("type", ""),
            "input": _quoted(e.get("input")),
        }
        for e in errors
    ]
    return ASCIIJSONResponse({"detail": detail}, status_code=422)


def _suggested(error: Any, names: list[str]) -> str:
    """The error's message; for a field no row has, with the accepted name it is most likely meant to be."""
    msg = str(error.get("msg", ""))
    loc = error.get("loc", ())
    if error.get("type") != "extra_forbidden" or not loc or not isinstance(loc[-1], str) or "rows" not in loc:
        return msg
    import difflib

    from mlpipeline.core.columns import snake_case

    given = loc[-1]
    close = [n for n in names if snake_case(n) == snake_case(given)] or difflib.get_close_matches(given, names, n=1)
    return f"{msg}: no feature {given!r}" + (f" (did you mean {close[0]!r}?)" if close else f" (features: {names})")
