"""Audit: admin actions and denials as records on the audit topic, and their search.

Rooms: service (record, search, the request hook the middleware calls), http, models.
"""
