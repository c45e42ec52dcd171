"""setuptools build hook: ship ``ecc_tensor_lm_eval.pth`` at the top of site-packages.

See ecc_tensor/_lm_eval_plugin.py for why lm-eval needs it. Used by both ``pip install .``
(through build_py) and ``pip install -e .`` (through the editable wheel's build_py run).
"""

from pathlib import Path

from setuptools.command.build_py import build_py

PTH_NAME = "ecc_tensor_lm_eval.pth"
PTH_LINE = "import ecc_tensor._lm_eval_plugin as _ecc_lm_eval; _ecc_lm_eval.install()\n"


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / PTH_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(PTH_LINE)

    def get_outputs(self, include_bytecode=True):
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH_NAME)]

    def get_output_mapping(self):
        mapping = dict(super().get_output_mapping())
        mapping[str(Path(self.build_lib) / PTH_NAME)] = str(Path(__file__).with_name("ecc_tensor") / "_lm_eval_plugin.py")
        return mapping


class _StrategyWithPth:
    """Wraps an editable-install strategy so the editable wheel carries the .pth too."""

    def __init__(self, strategy):
        self._strategy = strategy

    def __enter__(self):
        self._strategy.__enter__()
        return self

    def __exit__(self, *exc):
        return self._strategy.__exit__(*exc)

    def __call__(self, wheel, files, mapping):
        self._strategy(wheel, files, mapping)
        wheel.writestr(PTH_NAME, PTH_LINE)


try:
    from setuptools.command.editable_wheel import editable_wheel

    class EditableWheelWithPth(editable_wheel):
        def _select_strategy(self, *args, **kwargs):
            return _StrategyWithPth(super()._select_strategy(*args, **kwargs))

except ImportError:  # an old setuptools without PEP 660 editable wheels
    EditableWheelWithPth = None
