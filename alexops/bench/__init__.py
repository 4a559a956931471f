"""The benchmark harness behind `python -m alexops.compare`: timing (timing), the agreement
check (agreement), rows and their table, JSON and plot (report), the op-level loop shared by
every backend (oplevel), the TensorFlow and CuPy backends, and the stock GPU baseline
(cudnn). A tool, not part of the API: nothing here is needed to use the ops."""
