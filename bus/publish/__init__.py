"""Publish: envelopes checked (rules, schema, limits) and produced, one record or a batch.

Rooms: service, http, models.
"""
