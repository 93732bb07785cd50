"""obfleet's ob-configserver-compatible config server (`/services?Action=...`).

OBProxies in CONFIG_URL mode read their clusters' root servers from it, and observers started
with `obconfig_url` register theirs. The HTTP layer is obfleet.api.routes.configserver; what each
action means lives here: `service` (dispatch), `rootservice` (what is known about a cluster),
`registrations` (what observers post), `proxyconfig` (what OBProxies read first).
"""

from obfleet.configserver.errors import ConfigServerError
from obfleet.configserver.service import Call, answer, answer_at_hand

# One definition of the configUrl, kept with the rest of the OBProxy know-how.
from obfleet.obproxy.configurl import config_url

__all__ = ["Call", "ConfigServerError", "answer", "answer_at_hand", "config_url"]
