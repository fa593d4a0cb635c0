"""``python -m benchmark ...`` = the ``tower-bench`` console script."""
from benchmark.cli import main

if __name__ == "__main__":
    main()
