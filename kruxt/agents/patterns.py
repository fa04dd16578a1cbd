"""The linear-time patterns the agents read untrusted text with (see :mod:`kruxt.models.patterns`).

They live in ``models`` because adapters (the LLM triager's prompt fencing) need them too, and
adapters may not import agents. This module re-exports that public surface as it stands.
"""

from kruxt.models.patterns import *  # noqa: F403
from kruxt.models.patterns import __all__ as __all__
