"""The configUrl an OBProxy cluster in CONFIG_URL mode is started with, in OCP's form."""

from __future__ import annotations

from urllib.parse import urlencode


def config_url(base_url: str, obproxy_cluster_name: str) -> str:
    query = urlencode(
        {
            "Action": "GetObProxyConfig",
            "User_ID": "alibaba",
            "UID": "admin",
            "ObproxyClusterName": obproxy_cluster_name,
        }
    )
    return f"{base_url.rstrip('/')}/services?{query}"
