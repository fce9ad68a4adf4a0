"""SRP: selectively regularized structured pruning of translation Transformers.

Importing registers model ``srp`` (archs ``srp_iwslt_de_en``, ``srp_medium``, ``srp_small``,
``srp_tiny``), task ``srp_translation`` (alias ``SRPtranslation``), criterion ``srp`` and optimizer
``srp_adam``.
"""
from . import criterion, model, optimizer, task  # noqa: F401  (registration)
