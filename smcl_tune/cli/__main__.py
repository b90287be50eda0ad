import sys

from smcl_tune.cli.app import main

sys.exit(main())
