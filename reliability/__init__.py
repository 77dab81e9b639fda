"""The reliability suite (``make reliability``): nothing is lost, nothing is doubled.

Each scenario starts the product's own processes the way ``make run`` does (the
Temporal dev server on a SQLite file, the provider sandbox with ``--state-file``,
the worker and the HTTP API, each a subprocess it can SIGKILL and restart), runs a
few hundred sagas of every kind while it injects its faults, waits until every
saga has settled, and then checks the invariants against the sandbox's call log,
the providers' final state and every workflow history:

* every accepted saga reaches a final phase (or ``NEEDS_ATTENTION`` with a reason);
* per business key at most one effective provider effect, and none behind a saga's back;
* every needed compensation applied exactly once;
* no saga ends ``COMPLETED`` unless the provider completed it;
* no ``WorkflowTaskFailed`` in any history.

``python -m reliability --help`` for the command line; ``docs/reliability.md`` is
written by the suite. Modules:

============================ ==========================================================
``harness``                  the processes (start, SIGKILL, restart), on free ports
``workload``                 the saga mix, seeding the sandbox, starting a plan
``run``                      one scenario start to finish, its context and progress line
``scenarios``                the seven scenarios (``storms``, ``hostile``, ``poison``,
                             ``contract``: 4-7)
``faults``                   fault rules, outage windows, worker kills
``entrypoints``              the HTTP API and ``cancelctl`` as callers use them
``cli_batch``                many ``cancelctl`` invocations in one process
``hostile_inputs``           what Hypothesis draws, and what the rules make of it
``schema_bodies``            bodies shaped by the OpenAPI document (hostile input)
``api_contract``             Schemathesis against the API (``contract``; ``make test``)
``api_contract_hooks``       the fuzzer's credentials and the document's worded rules
``observe``                  every run: settled or not, history, final status
``provider_state``           the sandbox's call log (across restarts) and final state
``invariants``               the checks
``recovery``                 recovery times, from the histories
``report`` / ``suite``       ``docs/reliability.md`` and the console summary
============================ ==========================================================
"""
