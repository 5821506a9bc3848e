"""A content's page: what it is, its products, its credited orders, a live room's minutes."""
