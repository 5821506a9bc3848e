"""The analytic store: events replicated from the system of record into ClickHouse.

The attribution database stays the system of record (idempotency, attribution, rejected
events, orders and credits). Accepted events are copied, each exactly once in effect, into a
ClickHouse table ordered by ``(tenant_id, user_id, t)``, embedded through chdb by default or
on a server by URL, and funnels over event steps are answered from it.
"""
