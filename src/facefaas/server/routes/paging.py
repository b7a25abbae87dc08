"""Model listings a page at a time, showing each caller only the models it may see.

``GET /api/models`` and the seed's ``GET /api/executables`` stay JSON lists, so clients that read
one page keep working. ``?limit=`` sets the page size (default :data:`DEFAULT_PAGE`, at most
:data:`MAX_PAGE`); when more models follow, the answer has a ``Link: <...>; rel="next"`` header
(RFC 8288) whose URL, with its opaque ``cursor``, asks for the next page.

A private model is listed only to a caller presenting one of its keys (usage or admin); for
anyone else it is not there at all, not even counted.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from facefaas.registry import ModelRecord
from facefaas.server.routes.deps import Keys, ServiceDep

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "VisiblePage"]

DEFAULT_PAGE = 50
MAX_PAGE = 200


async def visible_page(
    request: Request,
    response: Response,
    service: ServiceDep,
    keys: Keys,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="models per page")] = DEFAULT_PAGE,
    cursor: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{1,12}$",
            description='where the page starts: from the previous page\'s Link rel="next"',
        ),
    ] = None,
) -> list[ModelRecord]:
    """One page of the models the request's keys may see; sets ``Link`` when more follow."""
    offset = int(cursor) if cursor else 0
    await service.flush_usage()
    records = await run_in_threadpool(
        service.registry.visible, keys, offset=offset, limit=limit + 1
    )
    if len(records) > limit:
        query = urlencode({"limit": limit, "cursor": offset + limit})
        response.headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
    return records[:limit]


VisiblePage = Annotated[list[ModelRecord], Depends(visible_page)]
