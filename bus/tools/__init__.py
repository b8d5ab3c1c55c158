"""Tool calls: a call placed on a conversation, delivered to the callee's inbox, its result
or timeout or cancel, nested calls.

Rooms: service, http, models.
"""
