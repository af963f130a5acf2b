"""``python -m phase4_production.pipeline run clip1.avi clip2.avi --out out/`` (see ``cli.py``)."""
from .cli import main

raise SystemExit(main())
