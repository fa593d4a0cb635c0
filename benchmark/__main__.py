"""``python -m benchmark ...`` = the ``tower-bench`` console script."""
from .cli import main

if __name__ == "__main__":
    main()
