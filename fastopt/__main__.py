import os
import sys

from .cli import main

try:
    raise SystemExit(main())
except BrokenPipeError:         # piped into a reader that stopped (| head): no traceback
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise SystemExit(1) from None
