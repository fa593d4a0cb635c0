"""Developer measuring scripts (GPU session, GPU check, start-up timing): run as ``python -m``, imported by nothing below."""
