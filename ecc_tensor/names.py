"""The names every layer and the command line agree on, without importing torch (so that
``ecc-tensor --help`` and every usage error answer before the heavy imports)."""

FAULT_KINDS = ("bsc", "burst", "msb", "page")
FAULT_KIND_ALIASES = {"random": "bsc"}
FAULT_SITES = ("write", "read", "both")
FAULT_TARGETS = ("all", "values")

# ecc_tensor.modes defines each mode and checks that it defines exactly these.
MODE_NAMES = ("fp16", "fp16-unprotected", "int4", "int4-hamming", "int4-hamming84", "int4-hamming84-interp", "int12-golay", "fp8",
              "int4-secded72", "int4-secded72-interp")
# The paper's six (the sweep's default grid).
PAPER_MODES = ("fp16", "int4", "int4-hamming", "int4-hamming84", "int4-hamming84-interp", "int12-golay")
