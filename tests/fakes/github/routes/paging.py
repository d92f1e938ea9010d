"""GitHub's pagination, honestly: `per_page` (default 30, at most 100) and `page`, and a
Link header with the next, last, first and prev pages, so that a client reading only the
first page is caught by a test with more items than that."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def page_of(
    request: Request,
    items: Sequence[Any],
    render: Callable[[Any], Any],
    *,
    wrap: str | None = None,
) -> JSONResponse:
    """The page of `items` the request asks for, each rendered by `render` (only those on
    the page); with `wrap`, as GitHub's wrapped lists are (`{"total_count": N, wrap:
    [...]}`, as for check runs)."""
    asked = _int(request.query_params.get("per_page"), DEFAULT_PER_PAGE)
    per_page = max(1, min(asked, MAX_PER_PAGE))
    page = max(1, _int(request.query_params.get("page"), 1))
    last = max(1, -(-len(items) // per_page))
    chunk = [render(item) for item in items[(page - 1) * per_page : page * per_page]]

    def link(number: int, rel: str) -> str:
        url = request.url.include_query_params(per_page=per_page, page=number)
        return f'<{url}>; rel="{rel}"'

    links = []
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links += [link(1, "first"), link(page - 1, "prev")]
    headers = {"Link": ", ".join(links)} if links else {}
    body: Any = {"total_count": len(items), wrap: chunk} if wrap else chunk
    return JSONResponse(body, headers=headers)
