"""Simulated streaming workers: the real worker protocol without rendering or WebRTC media,
so that thousands of streams on hundreds of workers can run against the real platform
(``benchmarks/bench_sim_workers.py``). ``python -m workers.simulator --help``."""
