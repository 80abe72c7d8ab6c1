#!/usr/bin/env python3
"""FlowLabel entry point. `python launch.py --help` lists the options."""
import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
