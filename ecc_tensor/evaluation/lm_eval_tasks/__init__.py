"""Local lm-eval tasks (``--include_path``): run without the hub.

    lm_eval --model hf-ecc --model_args pretrained=PATH,cache_mode=int12-golay,ber=1e-3 \\
        --include_path "$(ecc-tensor tasks-path)" --tasks ecc_heldout
"""

from pathlib import Path

PATH = str(Path(__file__).parent)
