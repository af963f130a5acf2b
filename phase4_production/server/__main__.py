"""``python -m phase4_production.server``: see :mod:`phase4_production.server.cli`."""
from .cli import main

raise SystemExit(main())
