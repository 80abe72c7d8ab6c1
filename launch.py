#!/usr/bin/env python3
"""FlowLabel entry point, the same as the installed `flowlabel` command. `--help` lists the options."""
from app.commands.cli import entry

if __name__ == "__main__":
    entry()
