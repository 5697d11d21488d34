"""The benchmark: ``python bench/run.py [--quick] [--json FILE]`` (the same as ``linea bench``)."""
import sys

from linea._bench import main

if __name__ == "__main__":
    sys.exit(main())
