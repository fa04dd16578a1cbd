"""``python -m kruxt`` is the ``kruxt`` CLI."""

from kruxt.starter.cli import main

raise SystemExit(main())
