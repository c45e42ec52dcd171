"""Two costs of Triton's interpreter that are no part of what it interprets, removed for the
CPU test run (most of the suite's time is interpreted kernels: ``tests/conftest.py`` installs
this with the interpreter) and for ``compile_cache_launches.py``'s recording.

- Each call of a ``@triton.jit`` helper re-patches ``triton.language`` for the interpreter
  (``_patch_lang``: ``inspect.getmembers`` over four modules), though the kernel's launch has
  patched them already and restores them when it ends; the helper's patches find nothing left
  to replace and are never restored. Inside a launch that patched every language module a
  helper sees, the helper's call now skips it.
- ``_get_np_dtype`` builds a dictionary of 19 Triton types on every call (once per operation
  the interpreter runs); its answers are now cached per type.

Together ~20% of an interpreted fused-attention test (Triton 3.9). Both leave what runs
unchanged; where this Triton lacks either function, ``install`` leaves it as it is.

A third cost is CPython's: ``roomy_call`` runs a function from a frame that takes a stack chunk
of its own, where the interpreter's calls in and out of one depth could map and unmap a chunk
each (the test run calls every test through it; so does the recording).
"""

from __future__ import annotations

import inspect


def _call_in_a_roomy_stack_chunk():
    """``call(f, *args, **kwargs)``: ``f`` called from a frame of 40,000 local slots. CPython 3.11
    keeps frames in 16 KiB chunks, maps each new chunk and unmaps it as soon as its first frame
    returns; Triton's interpreter calls in and out at one depth for hours, and where that depth
    straddles a chunk's end every call maps and unmaps one (strace: two million 16 KiB
    ``mmap``/``munmap`` pairs in one interpreted test, half its time; where a test started on the
    stack decided whether it did: 30-100 s for the same test). This frame takes a chunk of its
    own, sized to a power of two (512 KiB), so ``f`` runs in the ~190 KiB left above it."""
    slots = " = ".join(f"_{i}" for i in range(40_000))
    source = f"def call(f, *args, **kwargs):\n    if f is None:\n        {slots} = 0\n    return f(*args, **kwargs)\n"
    namespace: dict = {}
    exec(compile(source, "<roomy stack chunk>", "exec"), namespace)
    return namespace["call"]


roomy_call = _call_in_a_roomy_stack_chunk()


def _langs(fn, tl) -> set[int]:
    """The language modules ``_patch_lang`` patches for ``fn`` (as it finds them)."""
    return {id(value) for value in fn.__globals__.values() if inspect.ismodule(value) and value in (tl, tl.core)}


def install() -> bool:
    try:
        import triton.language as tl
        from triton.runtime import interpreter
    except ImportError:
        return False
    patch_lang = getattr(interpreter, "_patch_lang", None)
    np_dtype = getattr(interpreter, "_get_np_dtype", None)
    if patch_lang is None or np_dtype is None or getattr(patch_lang, "skips_nested", False):
        return False
    if list(inspect.signature(patch_lang).parameters) != ["fn"] or list(inspect.signature(np_dtype).parameters) != ["tt_dtype"]:
        return False

    patched: list[set[int]] = []  # the language modules of each launch's scope, while it lasts

    class _Unchanged:
        def restore(self) -> None:
            pass

    def patch_lang_once(fn):
        langs = _langs(fn, tl)
        if patched and langs <= set().union(*patched):
            return _Unchanged()
        scope = patch_lang(fn)
        patched.append(langs)
        restore = scope.restore

        def restore_and_forget() -> None:
            restore()
            patched.remove(langs)

        scope.restore = restore_and_forget
        return scope

    patch_lang_once.skips_nested = True
    interpreter._patch_lang = patch_lang_once

    cache: dict = {}

    def cached_np_dtype(tt_dtype):
        key = tt_dtype.element_ty if isinstance(tt_dtype, tl.block_type) else tt_dtype  # a block's type is its element's
        try:
            return cache[key]
        except KeyError:
            cache[key] = np_dtype(key)
            return cache[key]
        except TypeError:  # not hashable
            return np_dtype(tt_dtype)

    interpreter._get_np_dtype = cached_np_dtype
    return True
