"""The web console: static assets served at /ui by every worker, and the few read-only
endpoints it needs that the API did not have (see web.py)."""
