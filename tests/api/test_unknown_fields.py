"""Unknown fields in a request body are refused (400, 1003), each named by its JSON path with a
did-you-mean; the fields OCP's doc samples send that obfleet ignores are not unknown.

The doc samples' request bodies are copied below (SAMPLE_REQUESTS) and checked against the pages
when the docs are there (../shared/ocp-docs), so every body a page shows is fed to its route.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from obfleet.api.app import ROUTERS
from obfleet.api.schema import RequestModel
from obfleet.api.unknown_fields import IGNORED_DOC_FIELDS, MAX_NAMED
from tests.api.doc_samples import DOCS
from tests.api.test_envelope import assert_error
from tests.conftest import ADMIN

CREATE = "/api/v2/obproxy/clusters"

# (method, path, body) of every page's sample request that has a body. The pages show the
# cluster-configuration PATCH as "GET"; its route is PATCH.
SAMPLE_REQUESTS: list[tuple[str, str, Any]] = [
    (
        "POST",
        "/api/v2/compute/hosts/batchCreate",
        {
            "hostBasicDataList": [{"innerIpAddress": "xxx.xxx.xxx.xxx"}],
            "sshPort": 22,
            "typeId": 1,
            "idcId": 1000002,
            "kind": "DEDICATED_PHYSICAL_MACHINE",
            "credentialId": 2000001,
        },
    ),
    ("POST", "/api/v2/compute/hosts/batchDelete", {"hostIdList": [4000002]}),
    (
        "POST",
        CREATE,
        {
            "obproxyInstallParam": {"hostIds": []},
            "obLinks": [
                {"clusterName": "hooray", "clusterId": 1, "username": "proxyro", "obClusterId": 1}
            ],
            "name": "OBProxy001",
            "address": "foo.bar",
            "port": 2883,
            "workMode": "CONFIG_URL",
        },
    ),
    ("PATCH", "/api/v2/obproxy/clusters/1", {"address": "foo.bar", "port": 2883}),
    (
        "POST",
        "/api/v2/obproxy/clusters/1/obproxies/batchAdd",
        {
            "hostIds": [2],
            "sqlPort": 2883,
            "exporterPort": 2884,
            "version": "obproxy-1.9.1.1-1919579.el7.x86_64.rpm",
        },
    ),
    ("POST", "/api/v2/obproxy/clusters/1/takeOver", {"hosts": [{"hostId": 1, "sqlPort": 2883}]}),
    (
        "POST",
        "/api/v2/obproxy/clusters/1/obLinks/batchAdd",
        [{"username": "proxyro", "clusterId": 1, "obClusterId": 1, "clusterName": "hooray"}],
    ),
]


def _page_request_body(markdown: str) -> Any | None:
    """The JSON body of a page's sample request: a curl --data-raw, or a fenced JSON block."""
    found = re.search(r"sample request(.*?)(sample response|\Z)", markdown, re.I | re.S)
    if found is None:
        return None
    text = found.group(1)
    raw = re.search(r"--data-raw '(.*?)'", text, re.S)
    if raw:
        return json.loads(raw.group(1))
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.S):
        if block.strip().startswith(("{", "[")):
            return json.loads(block)
    return None


def _unknown_refusal(response: Any) -> str | None:
    """The message when the answer refuses unknown fields, else None."""
    if response.status_code != 400:
        return None
    message = str(response.json()["error"]["message"])
    return message if "unknown field" in message else None


@pytest.mark.skipif(not DOCS.is_dir(), reason=f"no copy of the docs at {DOCS}")
def test_the_table_holds_every_sample_request_body_of_the_docs():
    table = [json.dumps(body, sort_keys=True) for _, _, body in SAMPLE_REQUESTS]
    for page in sorted(DOCS.glob("api*/**/*.md")):
        body = _page_request_body(page.read_text())
        if body is not None:
            assert json.dumps(body, sort_keys=True) in table, page


@pytest.mark.parametrize(("method", "path", "body"), SAMPLE_REQUESTS, ids=lambda v: str(v)[:40])
def test_no_doc_sample_body_is_refused_for_unknown_fields(client, method, path, body):
    r = client.request(method, path, headers=ADMIN, json=body)
    assert _unknown_refusal(r) is None, r.text
    # The route does check: the same body with a field no model has is refused.
    typo = [{**body[0], "clusterNmae": "x"}] if isinstance(body, list) else {**body, "sshPrt": 1}
    assert _unknown_refusal(client.request(method, path, headers=ADMIN, json=typo)), path


def test_a_misspelt_install_field_is_refused_by_its_path_with_a_suggestion(client):
    body = {
        "name": "typo",
        "workMode": "CONFIG_URL",
        "obLinks": [{"clusterName": "ob", "obClusterId": 1}],
        "obproxyInstallParam": {"hostIDs": [1], "sqlPort": 2883},
    }
    r = client.post(CREATE, headers=ADMIN, json=body)
    message = assert_error(r, 400, 1003)["error"]["message"]
    assert "obproxyInstallParam.hostIDs (did you mean 'hostIds'?)" in message, message
    assert client.get(CREATE, headers=ADMIN).json()["data"]["page"]["totalElements"] == 0


def test_every_unknown_field_is_named_with_its_path(client):
    body = {
        "name": "typo",
        "wrokMode": "RS_LIST",
        "obLinks": [{"clusterName": "ob", "obClusterId": 1, "usrname": "proxyro"}],
        "favouriteColour": "Secret_pw_12",
    }
    message = assert_error(client.post(CREATE, headers=ADMIN, json=body), 400, 1003)["error"]
    text = message["message"]
    assert "wrokMode (did you mean 'workMode'?)" in text, text
    assert "obLinks[0].usrname (did you mean 'username'?)" in text, text
    assert "favouriteColour (known fields: name, address," in text, text
    assert "Secret_pw_12" not in text  # an unknown field's value is never echoed


def test_a_top_level_list_body_names_the_item(client):
    body = [{"clusterName": "ob", "obClusterId": 1, "clusterNmae": "ob"}]
    r = client.post("/api/v2/obproxy/clusters/1/obLinks/batchAdd", headers=ADMIN, json=body)
    assert (
        "[0].clusterNmae (did you mean 'clusterName'?)"
        in assert_error(r, 400, 1003)["error"]["message"]
    )


def test_two_spellings_of_one_field_are_refused_as_such(client):
    body = {"hostIds": [1], "exportPort": 2884, "exporterPort": 2884}
    r = client.post("/api/v2/obproxy/clusters/1/obproxies/batchAdd", headers=ADMIN, json=body)
    assert (
        "another spelling of a field already given"
        in assert_error(r, 400, 1003)["error"]["message"]
    )


def test_the_answer_names_a_bounded_number_of_fields(client):
    body = {"name": "many", "obLinks": [], **{f"junk{i:02d}": i for i in range(40)}}
    text = assert_error(client.post(CREATE, headers=ADMIN, json=body), 400, 1003)["error"][
        "message"
    ]
    assert text.count("junk") == MAX_NAMED and "and 30 more" in text, text


def test_a_huge_unknown_name_is_cut_in_the_answer(client):
    body = {"name": "huge", "x" * 5000: 1}
    text = assert_error(client.post(CREATE, headers=ADMIN, json=body), 400, 1003)["error"][
        "message"
    ]
    assert "x" * 61 + "..." in text and "x" * 65 not in text


def test_every_ignored_doc_field_belongs_to_a_request_model():
    def subclasses(cls: type) -> set[type]:
        return {c for s in cls.__subclasses__() for c in {s} | subclasses(s)}

    assert ROUTERS  # importing the routers' modules defines the request models
    names = {model.__name__ for model in subclasses(RequestModel)}
    assert set(IGNORED_DOC_FIELDS) <= names
