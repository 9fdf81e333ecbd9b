"""The ground floor every package of the toolkit stands on; it imports nothing above it.

==================  ============================================================================
``errors``          the one error contract (:class:`~separation.core.errors.ToolkitError` and kin)
``paper``           the paper's constants (radii, norms, table order of datasets)
``arrays``          input conventions: points ``(n, d)`` uint8 or float in [0, 1], integer labels
``threat``          :class:`~separation.core.threat.ThreatModel`: the eps-ball of a norm in [0, 1]^d
``datasets``        :func:`~separation.core.datasets.load_dataset` and :class:`~separation.core.datasets.Dataset`
``records``         typed, verified result records (one folder per configuration)
``pipeline``        :class:`~separation.core.pipeline.RecordJob`: the one pipeline of record commands
``cli``             the command kit: argument types, logging, the exit-code contract
``paths``           safe names and output folders; ``progress``: bars where a person watches
``config_files``    YAML/JSON configuration input, checked against the fields it fills
``memory``          memory estimates checked before work; ``faults``: fault injection for tests
==================  ============================================================================

Nothing is imported here: ``import separation.core.records`` loads the records and what they need.
"""

__all__ = []  # nothing here: import the submodules
