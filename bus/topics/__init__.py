"""Topics: tenant-owned Kafka topics, their metadata and schema binding.

Rooms: service, store (typed reads of the topics table), http, models.
"""
