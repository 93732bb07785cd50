"""Roles are enforced on every route: a table over the app's own route list, so a route added
without a rule, or with the wrong one, fails here."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from obfleet.api.app import ROUTERS
from obfleet.api.auth import Public, Requires
from obfleet.security.roles import ROLES
from obfleet.services.users import create_user
from tests.conftest import basic

PASSWORD = "Role_Pass_123"


def _rules(route: APIRoute) -> list[object]:
    found = []
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Requires | Public):
            found.append(dep.call)
        stack.extend(dep.dependencies)
    return found


def api_routes(app) -> list[APIRoute]:
    """The routes of every router the app includes, checked against the app's OpenAPI paths so
    a router mounted some other way cannot slip past."""
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    documented = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    listed = {(m, r.path) for r in routes for m in r.methods}
    assert documented <= listed, documented - listed
    return routes


def concrete_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "999999", path)


def test_every_route_declares_exactly_one_rule(client):
    routes = api_routes(client.app)
    assert len(routes) > 10
    for route in routes:
        rules = _rules(route)
        assert len(rules) == 1, f"{route.methods} {route.path} has rules {rules}"


@pytest.fixture
def role_users(client):
    ctx = client.app.state.ctx
    with ctx.db.transaction() as session:
        for role in ROLES:
            create_user(session, f"u_{role.lower()}", PASSWORD, [role])
        create_user(session, "u_none", PASSWORD, [])
    return {role: basic(f"u_{role.lower()}", PASSWORD) for role in ROLES}


def test_roles_enforced_on_every_route(client, role_users):
    nobody = basic("u_none", PASSWORD)
    checked = 0
    for route in api_routes(client.app):
        (rule,) = _rules(route)
        if isinstance(rule, Public):
            continue
        for method in route.methods:
            path = concrete_path(route.path)
            r = client.request(method, path, headers=nobody)
            assert r.status_code == 403, f"{method} {path} without roles: {r.status_code}"
            for role, headers in role_users.items():
                allowed = (rule.resource, rule.action) in ROLES[role]
                r = client.request(method, path, headers=headers)
                assert r.status_code not in (401,), f"{method} {path} as {role}"
                assert (r.status_code == 403) != allowed, (
                    f"{method} {path} as {role}: {r.status_code}, expected "
                    f"{'allowed' if allowed else 'forbidden'} for {rule!r}"
                )
                checked += 1
    assert checked > 100


def test_forbidden_is_enveloped(client, role_users):
    r = client.post("/api/v2/ob/clusters/import", headers=role_users["PACKAGE_VIEWER"], json={})
    body = r.json()
    assert r.status_code == 403 and body["error"]["code"] == 3100
    assert "CLUSTER:WRITE" in body["error"]["message"]
