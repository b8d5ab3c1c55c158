"""Keys, authentication and quotas: API keys with scopes, tenant and key quotas metered
fleet-wide.

Rooms: service (key CRUD), auth (which key a request carries), quotas and metering,
store (typed reads of the keys table), http, models and quota_models.
"""
