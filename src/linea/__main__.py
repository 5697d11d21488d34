"""``python -m linea demo`` runs the command line."""
import sys

from linea.cli import main

sys.exit(main())
