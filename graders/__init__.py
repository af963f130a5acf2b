"""Inference Lab graders: measure a learner's implementation against each phase's thresholds.

Entry points: ``python -m graders grade --phase N`` (``make grade``), ``python -m graders release``.
Modules: ``outcomes`` (thresholds as data), ``profiles`` (hardware), ``harness`` (measurement),
``verdicts`` (bands and noise), ``plugin`` + ``runner`` (isolated grading), ``reporting`` (outputs),
``release`` (the learner copy). Criteria live in ``graders/phaseN/``.
"""
__all__: list[str] = []
