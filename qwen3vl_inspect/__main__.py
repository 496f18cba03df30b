import sys

from qwen3vl_inspect.cli import main

sys.exit(main())
