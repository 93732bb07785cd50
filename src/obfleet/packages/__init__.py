"""Software packages: RPM header parsing and payload extraction, without `rpm` anywhere."""
