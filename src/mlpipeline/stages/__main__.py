"""``python -m mlpipeline.stages <stage>``: run one pipeline stage (dvc.yaml calls it through bin/stage)."""

import sys

from mlpipeline.stages import main

sys.exit(main(sys.argv[1:]))
