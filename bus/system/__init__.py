"""The worker itself: health, metrics, the OpenAPI document, and the bus's own schemas."""
