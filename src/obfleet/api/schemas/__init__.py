"""The typed response bodies of the API, one module per OCP module; each model builds itself
from the rows (`Out.of(...)`), so what a route answers is what /openapi.json says."""
