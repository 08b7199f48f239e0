"""NVIDIA's own tools on a built repository: the environment that runs a bare `tritonserver` and
`perf_analyzer` from the CPU wheels, perf_analyzer input data of real histories, and Model Analyzer."""
