"""Subscriptions: durable consumers with ack, redelivery, dead letters and lag.

Rooms: service (metadata), dispatcher (one per subscription, on its owner),
dispatcher_pool (the dispatchers this worker runs), ack_log (acks above a gap, fenced),
dead_letters, store, http (metadata), delivery_http (pull, SSE, ack, seek, lag), models.
"""
