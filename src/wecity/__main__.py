"""`python -m wecity` is the `wecity` command."""

from wecity.cli import main

raise SystemExit(main())
