"""`python -m poptune`: the same as the `poptune` console script."""

import sys

from poptune.cli import main

sys.exit(main())
