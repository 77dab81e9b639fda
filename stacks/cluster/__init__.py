"""``make cluster``: the product on Temporal Server as a cluster on PostgreSQL.

``make run`` uses the dev server (one process, SQLite). This package runs what users
who outgrow it run: PostgreSQL (:mod:`.postgres`), Temporal Server's four services as
separate processes configured by ``deploy/temporal/cluster.yaml`` (:mod:`.temporal`),
the Web UI server, and the product's processes with N workers (:mod:`.stack`), each
supervised on its own (:class:`stacks.service.Service`) so that one can be stopped and
restarted alone. ``python -m stacks.cluster`` runs it in the foreground; ``tests/cluster``
proves the sagas on it, faults included.
"""
