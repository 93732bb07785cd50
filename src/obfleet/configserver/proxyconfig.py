"""What an OBProxy in CONFIG_URL mode reads first: GetObProxyConfig and its template variant.

Both answer a list of cluster names (with one ObRootServiceInfo URL each, or a URL template) and
a `Version`. OBProxy polls with `VersionOnly=true` and re-reads the config, and the root-service
lists behind it, when the version changes. So the version digests the listed clusters' root
services as well as the answer itself: a moved root server then reaches every OBProxy."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from obfleet.configserver.rootservice import RootServiceInfo

# ob-configserver's templates (model/obproxy_config.go); OBProxy substitutes the ${...} names.
TEMPLATE_V1 = "{base}/services?Action=ObRootServiceInfo&ObRegion=${{ObRegion}}"
TEMPLATE_V2 = (
    "{base}/services?Action=ObRootServiceInfo&version=2&ObCluster=${{ObCluster}}"
    "&ObClusterId=${{OBClusterId}}"
)


def root_service_url(base_url: str, cluster: str) -> str:
    return f"{base_url}/services?Action=ObRootServiceInfo&ObCluster={quote(cluster, safe='')}"


def _bin_url(base_url: str) -> str:
    return f"{base_url}/client?Action=GetObProxy"


def _meta_database(base_url: str) -> dict[str, str]:
    """ob-configserver's placeholder metadb: OBProxies started by obfleet, as by OCP, run with
    enable_metadb_used=false and never follow it."""
    return {
        "DataBase": "***",
        "MetaDataBase": f"{base_url}/services?Action=ObRootServiceInfo"
        "&User_ID=alibaba&UID=admin&ObRegion=obdv1",
        "Password": "***",
        "User": "***",
    }


def _version(answer: dict[str, Any], clusters: dict[str, list[RootServiceInfo]]) -> str:
    """A digest of the answer and of every listed cluster's root services; canonical JSON, so
    every replica computes the same version from the same metadb."""
    contents = [info.content() for infos in clusters.values() for info in infos]
    text = json.dumps([answer, contents], sort_keys=True, separators=(",", ":"))
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def proxy_config(base_url: str, clusters: dict[str, list[RootServiceInfo]]) -> dict[str, Any]:
    """GetObProxyConfig's Data for the clusters given (name -> its clusters, in order)."""
    answer: dict[str, Any] = {
        "ObProxyBinUrl": _bin_url(base_url),
        "ObProxyDatabaseInfo": _meta_database(base_url),
        "ObRootServiceInfoUrlList": [
            {"ObRegion": name, "ObRootServiceInfoUrl": root_service_url(base_url, name)}
            for name in clusters
        ],
    }
    return {**answer, "Version": _version(answer, clusters)}


def url_template(base_url: str, clusters: dict[str, list[RootServiceInfo]]) -> dict[str, Any]:
    """GetObRootServiceInfoUrlTemplate's Data: the names and URL templates instead of URLs."""
    answer: dict[str, Any] = {
        "ObProxyBinUrl": _bin_url(base_url),
        "ObProxyDatabaseInfo": _meta_database(base_url),
        "ObClusterList": list(clusters),
        "ObRootServiceInfoUrlTemplate": TEMPLATE_V1.format(base=base_url),
        "ObRootServiceInfoUrlTemplateV2": TEMPLATE_V2.format(base=base_url),
    }
    return {**answer, "Version": _version(answer, clusters)}
