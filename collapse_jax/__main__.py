"""`python -m collapse_jax` is the `collapse-jax` command."""

import sys

from collapse_jax.cli import main

sys.exit(main())
