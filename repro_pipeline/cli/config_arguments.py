"""The ``--mask-rules`` and ``--commercial-extensions`` options, the same on every command that reads them."""

from __future__ import annotations

import argparse
from pathlib import Path

from repro_pipeline.engine.config import default_config_paths


def add_config_file_arguments(parser: argparse.ArgumentParser) -> None:
    mask_rules, commercial_extensions = default_config_paths()
    parser.add_argument(
        "--mask-rules",
        type=Path,
        default=mask_rules,
        metavar="FILE",
        help="the masking rules (default: %(default)s; $REPRO_MASK_RULES sets it)",
    )
    parser.add_argument(
        "--commercial-extensions",
        type=Path,
        default=commercial_extensions,
        metavar="FILE",
        help="subset strategies, virtual foreign keys and closure options (default: %(default)s; "
        "$REPRO_COMMERCIAL_EXTENSIONS sets it)",
    )
