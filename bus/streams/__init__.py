"""Token streams: chunks written by a producer (HTTP or WebSocket) and read in order by any
number of readers, with gap, late and terminal events.

Rooms: service (the owner's writes), reader (fan-out to readers), http (POST and SSE),
socket_http (the WebSocket writer), models.
"""
