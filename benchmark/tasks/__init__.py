"""Downstream tasks: one module per data source plus the users' own data (manifests, folders), each a ``Task``."""
