"""Subscribe: a topic read live as server-sent events, resumable from a cursor.

Rooms: service (topic readers and cursors), http.
"""
