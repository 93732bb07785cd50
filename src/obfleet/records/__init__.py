"""The domain rows that flows and services share, read and written in the caller's session:
obproxy rows (and the task holding each), hosts and how to reach them, the password box, OB
cluster records with their links and proxyro passwords, and the package store.

Below flows and services: it imports neither, so a flow never climbs into a service to find a
row, and a service never reaches into a flow for one.
"""
