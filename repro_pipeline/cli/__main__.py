import sys

from repro_pipeline.cli.main import main

sys.exit(main())
