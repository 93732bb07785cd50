"""Test support code that is not a test itself.

`testhosts` builds real test hosts (network + mount + pid namespaces, each with its own sshd) and
`hostfixtures` wraps them in pytest fixtures.
"""
