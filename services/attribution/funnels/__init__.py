"""Ordered conversion funnels (``POST /v1/funnels``).

Each module imports only those listed after it:

* ``router`` - HTTP: the query model in, the answer out, the source chosen (``funnel_source``);
* ``service`` - orchestration: range check, plan, ask the source, shape the answer;
* ``source`` - ``FunnelSource`` (step counts for a plan) and its SQL + engine implementation;
* ``reader`` - per-user rows of the database → users as the engine takes them;
* ``repository`` - runs the statements on the request's session, streams chunks;
* ``queries`` - the SQL statements, built from a plan;
* ``planner`` - the request (``FunnelPlan``) and how each database reads it (pure);
* ``schemas`` - the wire formats;
* ``engine`` - the exact funnel semantics and their streaming evaluation (pure).
"""
