"""Run the benchmark: ``python benchmarks/run.py [options]``, the same as ``numcnn bench``.

    python benchmarks/run.py --help
    python benchmarks/run.py --only L1,L3 --dtype float32 --repeat 15
"""

import sys

from numcnn.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
