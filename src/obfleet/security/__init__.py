"""Password hashing, secret encryption at rest, and OCP's AK/SK request signatures."""
