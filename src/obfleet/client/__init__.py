"""The obfleet client: an httpx client of obfleet's public HTTP API and the `obfleet` commands
built on it (profiles, resources, `task watch`, `apply`). It imports nothing of the server, so it
works against any obfleet and, for OCP's own endpoints, against OCP itself."""
