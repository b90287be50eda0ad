"""Entry script for `ray submit docker/cluster.yaml docker/submit_study.py run STUDY.yaml [...]`.

`ray submit` uploads one Python file and runs it on the head node with the given arguments;
this file hands them to the `smcl-tune` command unchanged, so `ray submit ... run X.yaml` does
what `smcl-tune run X.yaml` does. On the head node `smcl-tune run` joins the running cluster.
"""

import os
import sys

from smcl_tune.cli import main

if __name__ == "__main__":
    # `ray submit` sets no RAY_ADDRESS: without it `smcl-tune run` would start a Ray of its own
    # beside the cluster's, on the head's CPUs alone. "auto" is the cluster this head runs.
    os.environ.setdefault("RAY_ADDRESS", "auto")
    sys.exit(main(sys.argv[1:]))
