# Source this on a bare GPU machine (no network) from the repository root: installs the
# carried wheels (.whl/: torchao, lm-eval's stack if needed) and ecc_tensor itself, editable,
# without fetching anything.
set -o pipefail
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
  export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile -e . || return 1
python3 - <<'PY'
import torch, triton, transformers, torchao, ecc_tensor.ops  # noqa: F401
p = torch.cuda.get_device_properties(0)
print(f"{p.name} {p.multi_processor_count} SMs | torch {torch.__version__} | triton {triton.__version__} | "
      f"transformers {transformers.__version__} | torchao {torchao.__version__}")
PY
