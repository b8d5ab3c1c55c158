"""Rules: per-tenant deny/tag/reroute/require-approval rules applied at the publish edge.

Rooms: engine (pure evaluation), service (rule sets, and applying the stored ones), store,
http, models.
"""
