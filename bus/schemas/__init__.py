"""Schemas: the registry (subjects, versions, compatibility) and validation of payloads on
bound topics.

Rooms: service, registry and compatibility (pure decisions), validation (pure), store,
http, models.
"""
