"""Schemas: the registry (subjects, versions, compatibility) and validation of payloads on
bound topics.

Rooms: service, registry and compatibility (pure decisions), validation and compiled (pure:
the payload check, jsonschema-rs held to python-jsonschema's verdict), store, http, models.
"""
