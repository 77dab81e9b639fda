"""Nimbus, a toy fourth provider, built the way ``docs/adding-a-provider.md`` says.

Nimbus sells cloud storage plans; a plan's cancellation is scheduled for a date,
can be withdrawn until it takes effect, and is final after. Each module here is
the file the guide names, in the product's layout:

========================= =========================================================
here                      in the product
========================= =========================================================
``domain.py``             ``domain/nimbus.py`` (+ its declarations in
                          ``domain/provider_activities.py``)
``activities.py``         ``activities/nimbus.py`` (faked here, as the fast tier fakes
                          every provider)
``part.py``               ``workflows/nimbus_steps.py`` + ``workflows/nimbus_plan.py``
``sagas.py``              ``workflows/plan_cancellation.py`` (and a composition with
                          the sTN line, as the churn composes its parts)
``kinds.py``              the entries in ``starter/kinds.py``
========================= =========================================================

No product module is edited for it: ``tests/fast/test_nimbus.py`` registers its kinds
and runs them on the real dev server, with the product's steering kernel, provider
calls, ledger and pivot composition.
"""
