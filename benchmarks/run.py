"""Run the benchmark from a source checkout: ``python benchmarks/run.py [options]`` is
``numcnn bench [options]`` with this checkout's numcnn (installed or not) and the textbook
code next to this file.

    python benchmarks/run.py --help
    python benchmarks/run.py --only L1,L3 --dtype float32 --repeat 15 --rounds 5
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from numcnn.bench import main  # noqa: E402 - after the path is set

if __name__ == "__main__":
    sys.exit(main(["--textbook", str(HERE / "textbook.py"), *sys.argv[1:]]))
