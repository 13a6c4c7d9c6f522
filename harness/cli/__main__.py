"""`python -m harness.cli` (the re-exec with the OpenBLAS preload runs this)."""

import sys

from harness.cli import main

sys.exit(main())
