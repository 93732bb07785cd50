"""OBProxy know-how: command line, parameter catalog, admin SQL client, config-url handling."""
