import sys
from pathlib import Path

# Shared test helpers (cli_util) live beside this file.
sys.path.insert(0, str(Path(__file__).parent))
