"""`python -m posthorn`: the same as the `posthorn` command."""

import sys

from posthorn.cli import main

sys.exit(main())
