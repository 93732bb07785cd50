"""Every table obfleet keeps. Importing this package registers them all on Base.metadata."""

from obfleet.store.models import (  # noqa: F401
    audit,
    configserver,
    credentials,
    hosts,
    iam,
    ob_clusters,
    obproxy,
    packages,
    replicas,
    tasks,
)
