"""The configUrl of a cluster: its name, whatever characters it holds, reads back from the URL's
query exactly as given (the common names skip quote_plus: obfleet.obproxy.configurl)."""

from __future__ import annotations

from urllib.parse import parse_qs, quote_plus, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from obfleet.obproxy.configurl import config_url

BASE = "http://198.18.0.1:8080/"


def read_back(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


@given(st.text(min_size=1, max_size=40))
def test_any_name_reads_back_from_the_url(name: str) -> None:
    url = config_url(BASE, name)
    assert url.endswith("&ObproxyClusterName=" + quote_plus(name))
    assert read_back(url)["ObproxyClusterName"] == [name]


def test_the_fixed_part_is_ocps() -> None:
    assert config_url(BASE, "proxy_1.a-b~c") == (
        "http://198.18.0.1:8080/services?Action=GetObProxyConfig&User_ID=alibaba&UID=admin"
        "&ObproxyClusterName=proxy_1.a-b~c"
    )
    assert read_back(config_url(BASE, "a b&c=d+e%f/g"))["ObproxyClusterName"] == ["a b&c=d+e%f/g"]
