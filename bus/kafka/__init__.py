"""Mechanism: the Kafka boundary. The Faust app (faust_app) and every patch of Faust's
internals (faust_patches), the shared producer and admin client (gateway), partitioned
transactions (transactions), and the context a handler gets (context).
"""
