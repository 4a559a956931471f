"""`python -m alexops.compare`: the benchmark harness's entry point (alexops.bench.compare)."""
import sys

from alexops.bench.compare import main

if __name__ == "__main__":
    sys.exit(main())
