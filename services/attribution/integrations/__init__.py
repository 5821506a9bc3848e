"""Shop integrations: Shopify and WooCommerce webhooks, verified, deduplicated and mapped
onto the order lifecycle.

- ``signature``: the platforms' HMACs over the raw body (pure).
- ``mapping``: a platform's order or refund body → ``OrderIn`` / ``RefundIn`` (pure).
- ``repository``: SQL for connections and deliveries.
- ``service``: connections, and one delivery from signature to order (calls the orders domain).
- ``router``: HTTP only.
"""
