"""``python -m pickwise_pipeline`` runs the CLI."""

import sys

from pickwise_pipeline.cli import main

sys.exit(main())
