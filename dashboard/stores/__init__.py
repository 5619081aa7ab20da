"""The dashboard's middle layer: one module per family of ``dcc.Store``.

Each module owns its stores' JSON format and defaults, the conversions to and from engine objects,
the transitions (a user action -> an ``Outcome``) and the memoised engine calls.  Store modules build
no HTML and no figures (``tests/test_architecture.py`` checks their imports).
"""
