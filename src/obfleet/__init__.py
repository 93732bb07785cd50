"""obfleet: an OBProxy fleet manager for OceanBase with an OCP-compatible REST API."""

__version__ = "0.1.0"
