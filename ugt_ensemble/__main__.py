"""`python -m ugt_ensemble ...`"""

import sys

from ugt_ensemble.cli import main

sys.exit(main())
