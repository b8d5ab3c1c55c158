"""Mechanism: the HTTP surface. The route table (routes), access declarations and checks
(access), the middleware, server-sent events (event_stream), the OpenAPI document, the
deadline for a request's head on every connection (connections), and putting routes on
the web server (server).
"""
