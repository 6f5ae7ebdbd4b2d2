"""The client's dashboard: server-rendered pages under /dashboard/ (Jinja2, plain forms,
no scripts)."""
