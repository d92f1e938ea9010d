"""The App webhook's delivery log (App JWT): every attempt newest first, paged by an
opaque cursor as GitHub pages it (the next page only through the Link header), and
redelivery of one attempt (202, then the same delivery again, later)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.background import BackgroundTask

from tests.fakes.github.hooks import delivery_item
from tests.fakes.github.routes.common import error, github

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
CURSOR_PREFIX = "v1_"


async def list_deliveries(
    request: Request, per_page: int = DEFAULT_PER_PAGE, cursor: str | None = None
) -> Response:
    gh = github(request)
    if not gh._jwt_ok(request):
        return error(401, "A JSON web token could not be decoded")
    every = gh.webhooks.newest_first()
    status = request.query_params.get("status")
    if status in ("success", "failure"):
        every = [a for a in every if (200 <= a["status_code"] < 300) == (status == "success")]
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    start = 0
    if cursor is not None:
        # The cursor names the first attempt of its page.
        ids = [a["id"] for a in every]
        wanted = cursor.removeprefix(CURSOR_PREFIX)
        if not wanted.isdigit() or int(wanted) not in ids:
            return error(422, "Validation Failed: invalid cursor")
        start = ids.index(int(wanted))
    chunk = every[start : start + per_page]
    headers = {}
    if start + per_page < len(every):
        following = every[start + per_page]["id"]
        url = request.url.include_query_params(
            per_page=per_page, cursor=f"{CURSOR_PREFIX}{following}"
        )
        headers["Link"] = f'<{url}>; rel="next"'
    return JSONResponse([delivery_item(a) for a in chunk], headers=headers)


async def redeliver(request: Request, delivery_id: int) -> Response:
    gh = github(request)
    if not gh._jwt_ok(request):
        return error(401, "A JSON web token could not be decoded")
    guid = gh.webhooks.start_redelivery(delivery_id)
    if guid is None:
        return error(404, "Not Found")
    # Sent after the answer, as GitHub does: the caller must not count on it being done.
    return JSONResponse({}, status_code=202, background=BackgroundTask(gh.webhooks.redeliver, guid))
