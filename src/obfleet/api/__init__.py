"""HTTP only: routers per OCP module, the envelope, errors, paging and auth. No business logic."""
