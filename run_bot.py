"""Entry point: `python run_bot.py [serve|chat|broadcast|sync|export|stats|locales|backup]`."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
