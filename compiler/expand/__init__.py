"""Macro expansion: reader output -> ``decls.Unit`` whose program bodies are core forms.

``unit`` handles a file's top-level forms (``defmap``, ``defprog``, ``defconstant``,
``defmacro`` ...) and hands each program body to ``body.BodyExpander``, which dispatches every
head to its handler; the handlers live by concern: ``bindings``, ``control``, ``places``,
``arith``, ``memory``, ``maps``. ``base`` holds what they share.
"""

from .unit import expand_unit

__all__ = ["expand_unit"]
