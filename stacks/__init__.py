"""The product's processes, assembled into running stacks.

One process layer for every stack: :mod:`.service` (one supervised process),
:mod:`.environment` (each product process's environment), :mod:`.product` (the
sandbox, codec server, workers and API), :mod:`.ports`; the stacks built on it:
:mod:`.devstack` (``make run``, and the reliability suite's and benchmarks' dev
server stack) and :mod:`.cluster` (``make cluster``). The product never imports it.
"""
