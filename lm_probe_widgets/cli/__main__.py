"""`python -m lm_probe_widgets.cli`: the same as the `lm-probe` command."""

import sys

from . import main

sys.exit(main())
