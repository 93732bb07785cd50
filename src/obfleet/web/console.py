"""The console's routes: login and the pages, under /console (and `/`, which leads there)."""

from __future__ import annotations

from fastapi import APIRouter

from obfleet.web import login, pages

router = APIRouter(include_in_schema=False)
router.include_router(login.router)
router.include_router(pages.router)
