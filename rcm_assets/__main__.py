"""`python -m rcm_assets` is the `rcm` command."""

import sys

from rcm_assets.cli.main import main

sys.exit(main())
