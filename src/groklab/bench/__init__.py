"""Speed measurements: `groklab bench engine` (engine.py) and `groklab bench suite` (suite.py, every performance
figure side by side in one run). Results go to BENCHMARKS.md."""

from groklab.bench.engine import (  # noqa: F401
    ENSEMBLE_MODELS,
    engine_benchmark,
    ensemble_benchmark,
    matmul_gflops,
)
