"""``python -m phase4_production.edge``: see :mod:`phase4_production.edge.cli`."""
from .cli import main

raise SystemExit(main())
