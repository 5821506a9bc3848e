"""The marketer dashboard page (static files served by ``router.py``)."""
