"""One plan per dispatcher: the dispatcher, its handlers, its jump table and its interfaces as one desired state.

Modules, bottom up: ``layout`` (where a rollout lives under its pin path), ``generations`` (the
generations pinned there: read, record, adopt, remove), ``testrun`` (packet tests on a private test
instance of an object), ``plan`` (desired state + host -> what to load, switch, prune; read-only),
``apply`` (carry a plan out; roll the live switch back on any failure), ``report`` (a plan and its
outcome as the module's result and an operator's diff).
"""
