"""Background workers of a running obfleet: the OBProxy health checks."""
