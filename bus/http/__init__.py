"""Mechanism: the HTTP surface. The route table (routes), access declarations and checks
(access), the middleware, server-sent events (event_stream), the OpenAPI document, and
putting routes on the web server (server).
"""
