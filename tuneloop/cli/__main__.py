"""`python -m tuneloop.cli`: how `tuneloop up` starts its children."""

import sys

from tuneloop.cli import main

sys.exit(main())
