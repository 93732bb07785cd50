"""OCP paging: page from 1, size up to 2000, sort=field,asc|desc; data.contents + data.page."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select, SQLColumnExpression, func, select
from sqlalchemy.orm import Session

from obfleet.errors import bad_request

T = TypeVar("T")
MAX_SIZE = 2000
# Far past any real list (20 billion rows at the largest size), and small enough that the
# offset (page - 1) * size always fits the database's 64-bit integers.
MAX_PAGE = 10_000_000


@dataclass(frozen=True)
class PageRequest:
    page: int
    size: int
    sort: str | None


async def page_request(
    page: int = Query(1, ge=1, description=f"Page number, from 1 to {MAX_PAGE}."),
    size: int = Query(10, ge=1, le=MAX_SIZE, description="Page size, at most 2000."),
    sort: str | None = Query(None, description="`field,asc` or `field,desc`.", examples=["id,asc"]),
) -> PageRequest:
    if page > MAX_PAGE:
        shown = str(page) if len(str(page)) <= 40 else str(page)[:37] + "..."
        raise bad_request(f"page {shown} is out of range: pages go from 1 to {MAX_PAGE}")
    return PageRequest(page=page, size=size, sort=sort)


def order_by(
    sort: str | None,
    sortable: Mapping[str, SQLColumnExpression[Any]],
    default: SQLColumnExpression[Any],
) -> list[SQLColumnExpression[Any]]:
    if not sort:
        return [default.asc()]
    field, _, direction = sort.partition(",")
    direction = (direction or "asc").strip().lower()
    column = sortable.get(field.strip())
    if column is None or direction not in ("asc", "desc"):
        raise bad_request(
            f"sort '{sort}' is not valid: use one of {', '.join(sorted(sortable))} "
            "followed by ,asc or ,desc"
        )
    ordered = column.asc() if direction == "asc" else column.desc()
    return [ordered] if column is default else [ordered, default.asc()]


def fetch_page(
    session: Session,
    stmt: Select[Any],
    req: PageRequest,
    sortable: Mapping[str, SQLColumnExpression[Any]],
    default: SQLColumnExpression[Any],
) -> tuple[Sequence[Any], int]:
    """One page of `stmt`'s rows (the objects themselves when it selects one entity or
    column), and how many rows there are in all."""
    offset = (req.page - 1) * req.size
    result = session.execute(
        stmt.order_by(*order_by(req.sort, sortable, default)).limit(req.size).offset(offset)
    )
    rows = result.scalars().all() if len(result.keys()) == 1 else result.all()
    return rows, _total(session, stmt, offset, len(rows), req.size)


def _total(session: Session, stmt: Select[Any], offset: int, fetched: int, size: int) -> int:
    """A page that is neither full nor past the end tells the total without a COUNT: the
    default page of a short list, and any size=2000 list of fewer rows, read once."""
    if 0 < fetched < size or (fetched == 0 and offset == 0):
        return offset + fetched
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def paginate(
    session: Session,
    stmt: Select[Any],
    req: PageRequest,
    sortable: Mapping[str, SQLColumnExpression[Any]],
    default: SQLColumnExpression[Any],
    render: Callable[[Any], Any],
) -> dict[str, Any]:
    """Run `stmt` for one page and render each row in OCP's paged shape."""
    rows, total = fetch_page(session, stmt, req, sortable, default)
    return paged([render(r) for r in rows], req, total)


def paged(items: Sequence[Any], req: PageRequest, total: int) -> dict[str, Any]:
    return {
        "contents": list(items),
        "page": {
            "number": req.page,
            "size": req.size,
            "totalElements": total,
            "totalPages": math.ceil(total / req.size) if total else 0,
        },
    }


class PageInfo(BaseModel):
    number: int
    size: int
    totalElements: int
    totalPages: int


class Page(BaseModel, Generic[T]):
    contents: list[T]
    page: PageInfo
