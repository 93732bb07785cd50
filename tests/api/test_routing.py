"""The API's routes sit in the app's own route list: FastAPI walks an included router's branch
twice per request, which cost about as much as a whole `/api/v2/time` answer (api/app.py)."""

from __future__ import annotations

from fastapi.routing import APIRoute

from obfleet.api.app import ROUTERS, create_app
from obfleet.config import Settings


def test_every_api_route_is_in_the_apps_own_list(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/m.db"))
    own = {id(route) for route in app.router.routes}
    api = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    assert len(api) > 50
    assert [f"{r.methods} {r.path}" for r in api if id(r) not in own] == []
