"""How the manager and the host agents speak to each other (DESIGN §1: the real world's port).

One definition on both sides of the wire: the HTTP API's bodies and views (``schemas``), the options
of a migration (``migration``), the event stream (``eventlog``) and the bearer-token gate (``guards``).
It depends on ``domain`` only; the agent serves it, the manager's client and engines call it.
"""
