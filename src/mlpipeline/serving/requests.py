"""Request bodies read strictly: every body the server cannot take as JSON is one 422 naming why, never a 500
or an undocumented 400.

FastAPI parses a JSON body with ``json.loads`` and answers anything but a syntax error with a bare
400 "There was an error parsing the body". Here every such case is a syntax error with its reason
(``JSON decode error: ...``): bytes that are not UTF-8, a number longer than Python reads, nesting deeper than it
reads, a key given twice in one object (JSON leaves that open; taking the last one silently would answer a
question the client did not ask), and text with a lone UTF-16 surrogate (``"\\ud800"``: valid JSON escapes, but no
character, so it could be neither matched nor logged).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

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
