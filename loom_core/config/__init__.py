"""User-level configuration: paths, settings and secrets."""
