"""Test stand-in for OBProxy (not OBProxy) and the builder that packs it into a real RPM.

The real OBProxy binary cannot be downloaded where the tests run, so the suite deploys
`tests/standin/obproxy.py` instead, packed by `tests.standin.rpm.build_standin_rpm` with the
real RPM layout.
"""
