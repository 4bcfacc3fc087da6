import sys

from smileloop.cli import main

sys.exit(main())
