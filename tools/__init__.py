"""Build-time tools; not part of the installed package (see pyproject.toml)."""
