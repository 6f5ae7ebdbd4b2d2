"""The management REST API (secret key): templates, destinations, organisation settings."""
