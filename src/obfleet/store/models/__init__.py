"""Every table obfleet keeps. Importing this package registers them all on Base.metadata."""

from obfleet.store.models import credentials, iam, ob_clusters, packages, tasks  # noqa: F401
